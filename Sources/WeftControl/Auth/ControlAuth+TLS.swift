import Foundation
import NIOSSL
import WeftIdentity

extension ControlPlanePKI {
  /// The API's TLS: 1.3 only, a fresh server certificate from this CA naming `names` (DNS names
  /// or IP addresses), client certificates optional (tokens are the other way in) but verified
  /// against this CA when sent. A peer that never answers the closing alert is let go after a
  /// second, so a shutdown is not held up by it.
  public func serverTLSConfiguration(names: [String]) throws -> TLSConfiguration {
    let server = try self.serverCredentials(names: names).pem()
    var tls = TLSConfiguration.makeServerConfiguration(
      certificateChain: try NIOSSLCertificate.fromPEMBytes(Array(server.chain.utf8)).map { .certificate($0) },
      privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(server.key.utf8), format: .pem)))
    tls.minimumTLSVersion = .tlsv13
    tls.trustRoots = .certificates([
      try NIOSSLCertificate(bytes: try self.authority.certificate.serializeAsPEM().derBytes, format: .der)
    ])
    tls.certificateVerification = .optionalVerification
    tls.shutdownTimeout = .seconds(1)
    return tls
  }
}
