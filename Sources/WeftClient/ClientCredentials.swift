import AsyncHTTPClient
import Foundation
import NIOCore
import NIOSSL
import Synchronization

/// How a client proves who it is to the controller and knows the controller is genuine.
public struct ClientCredentials: Sendable, Hashable {
  /// A bearer token (an operator's, or a bootstrap token).
  public var token: String?
  /// The client certificate chain, leaf first, PEM (a host's or an operator's).
  public var certificateChain: String?
  /// The client certificate's private key, PEM.
  public var privateKey: String?
  /// The control plane's CA certificate, PEM: the only root the controller is trusted by.
  /// Nil: plain HTTP.
  public var ca: String?

  /// Creates credentials.
  public init(
    token: String? = nil, certificateChain: String? = nil, privateKey: String? = nil, ca: String? = nil
  ) {
    self.token = token
    self.certificateChain = certificateChain
    self.privateKey = privateKey
    self.ca = ca
  }

  /// An HTTP client for these credentials: TLS 1.3, trusting only `ca`, presenting the client
  /// certificate when there is one. Over a unix socket there is no name to check the
  /// controller's certificate against; the control plane's CA signs server certificates for
  /// the controller alone, so its chain is what identifies it there.
  func httpClient(unixSocket: Bool) throws -> HTTPClient {
    var configuration = HTTPClient.Configuration()
    configuration.timeout.connect = .seconds(10)
    // A refused handshake will not pass on a second try; callers retry with their own backoff.
    configuration.connectionPool.retryConnectionEstablishment = false
    if let ca {
      var tls = TLSConfiguration.makeClientConfiguration()
      tls.minimumTLSVersion = .tlsv13
      do {
        tls.trustRoots = .certificates(try NIOSSLCertificate.fromPEMBytes(Array(ca.utf8)))
      } catch {
        throw ClientCredentialsError("the controller's CA (--ca, WEFT_CA) is not PEM certificates: \(error)")
      }
      tls.certificateVerification = unixSocket ? .noHostnameVerification : .fullVerification
      if let certificateChain, let privateKey {
        do {
          tls.certificateChain = try NIOSSLCertificate.fromPEMBytes(Array(certificateChain.utf8)).map {
            .certificate($0)
          }
          tls.privateKey = .privateKey(try NIOSSLPrivateKey(bytes: Array(privateKey.utf8), format: .pem))
        } catch {
          throw ClientCredentialsError("the client certificate or key (--cert, --key) is not PEM: \(error)")
        }
      }
      configuration.tlsConfiguration = tls
    }
    return HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
  }
}

/// Credentials that cannot be used, with what is wrong.
public struct ClientCredentialsError: Error, CustomStringConvertible, Sendable {
  /// What is wrong.
  public var description: String

  /// Creates one.
  public init(_ description: String) { self.description = description }
}

/// The HTTP client and credentials a ``ControlClient`` (and its copies) use, swapped in place
/// when a certificate is renewed.
final class ControlTransport: Sendable {
  private struct State {
    var http: HTTPClient
    var credentials: ClientCredentials
  }
  private let state: Mutex<State>
  private let owned: Bool

  init(http: HTTPClient, credentials: ClientCredentials, owned: Bool) {
    self.state = Mutex(State(http: http, credentials: credentials))
    self.owned = owned
  }

  var http: HTTPClient { self.state.withLock { $0.http } }
  var credentials: ClientCredentials { self.state.withLock { $0.credentials } }

  func replace(http: HTTPClient, credentials: ClientCredentials) {
    let old = self.state.withLock { state in
      defer { state = State(http: http, credentials: credentials) }
      return state.http
    }
    guard self.owned else { return }
    Task {
      try? await Task.sleep(for: .seconds(60))
      try? await old.shutdown()
    }
  }

  deinit {
    guard self.owned else { return }
    let http = self.state.withLock { $0.http }
    Task { try? await http.shutdown() }
  }
}
