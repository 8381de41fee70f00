import FoundationEssentials
import Glibc
import X509

/// Where the controller keeps its CA: `ca.pem` (the signing certificate), `ca-key.pem` (its
/// key, mode 0600), `intermediates.pem` (optional: certificates between an operator's
/// intermediate and its root) and `bundle.pem` (the roots every sidecar trusts). An operator
/// who puts their own root or intermediate and key there before the first start is used as they
/// are; otherwise a root is generated once and kept.
public struct CAStore: Sendable {
  /// The directory.
  public let directory: URL
  /// The name a root made here gets (with the trust domain and the time).
  public let name: String

  /// A store in `directory` (made when missing, mode 0700).
  public init(directory: URL, name: String = "Weft mesh CA") {
    self.directory = directory
    self.name = name
  }

  private func file(_ name: String) -> URL { self.directory.appendingPathComponent(name) }

  /// The CA and the trust bundle: read when present, else a new root made and written.
  public func loadOrCreate(trustDomain: String, now: Date = Date()) throws -> (
    CertificateAuthority, TrustBundle
  ) {
    let manager = FileManager.default
    try manager.createDirectory(
      at: self.directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
    let certificateFile = self.file("ca.pem")
    let keyFile = self.file("ca-key.pem")
    let haveCertificate = manager.fileExists(atPath: certificateFile.path)
    let haveKey = manager.fileExists(atPath: keyFile.path)
    if haveCertificate != haveKey {
      throw IdentityError(
        .store,
        "\(self.directory.path) has \(haveCertificate ? "ca.pem but no ca-key.pem" : "ca-key.pem but no ca.pem"): give both or neither"
      )
    }
    if !haveCertificate {
      let generated = try CertificateAuthority.generate(trustDomain: trustDomain, now: now, name: self.name)
      let pem = try generated.pem()
      try Self.write(pem.key, to: keyFile, mode: 0o600)
      try Self.write(pem.certificate, to: certificateFile, mode: 0o644)
    }
    let certificate = try self.read("ca.pem").first!
    let key: Certificate.PrivateKey
    do {
      key = try Certificate.PrivateKey(pemEncoded: try String(contentsOf: keyFile, encoding: .utf8))
    } catch {
      throw IdentityError(.store, "\(keyFile.path) is not a PEM private key: \(error)")
    }
    let intermediates =
      manager.fileExists(atPath: self.file("intermediates.pem").path)
      ? try self.read("intermediates.pem") : []
    let authority = try CertificateAuthority(
      certificate: certificate, key: key, intermediates: intermediates, trustDomain: trustDomain)
    let bundleFile = self.file("bundle.pem")
    if !manager.fileExists(atPath: bundleFile.path) {
      // The root: the last of the chain (the signing certificate itself when it is a root).
      let root = intermediates.last ?? certificate
      try Self.write(try TrustBundle(roots: [root]).pem(), to: bundleFile, mode: 0o644)
    }
    return (authority, TrustBundle(roots: try self.read("bundle.pem")))
  }

  /// Starts a CA rotation: a new root signs from now on, and the bundle trusts both the new
  /// root and the roots it trusted before, so certificates of either verify until the old ones
  /// have expired; then ``retire(keeping:)`` drops the old roots.
  public func rotate(trustDomain: String, now: Date = Date()) throws -> (CertificateAuthority, TrustBundle) {
    let (_, old) = try self.loadOrCreate(trustDomain: trustDomain, now: now)
    let fresh = try CertificateAuthority.generate(trustDomain: trustDomain, now: now, name: self.name)
    let pem = try fresh.pem()
    try Self.write(pem.key, to: self.file("ca-key.pem"), mode: 0o600)
    try Self.write(pem.certificate, to: self.file("ca.pem"), mode: 0o644)
    try? FileManager.default.removeItem(at: self.file("intermediates.pem"))
    let bundle = TrustBundle(roots: [fresh.certificate] + old.roots.filter { $0 != fresh.certificate })
    try Self.write(try bundle.pem(), to: self.file("bundle.pem"), mode: 0o644)
    return (fresh, bundle)
  }

  /// Ends a rotation: the bundle keeps only the current CA's root.
  public func retire(trustDomain: String) throws -> TrustBundle {
    let (authority, _) = try self.loadOrCreate(trustDomain: trustDomain)
    let bundle = TrustBundle(roots: [authority.intermediates.last ?? authority.certificate])
    try Self.write(try bundle.pem(), to: self.file("bundle.pem"), mode: 0o644)
    return bundle
  }

  private func read(_ name: String) throws -> [Certificate] {
    let url = self.file(name)
    let text: String
    do { text = try String(contentsOf: url, encoding: .utf8) } catch {
      throw IdentityError(.store, "cannot read \(url.path): \(error)")
    }
    return try TrustBundle.certificates(pem: text, what: url.path)
  }

  /// Writes `text` to `url` atomically with `mode`: the file is created with it, so a key never
  /// exists with looser rights, and renamed into place.
  public static func write(_ text: String, to url: URL, mode: mode_t) throws {
    let temporary = url.deletingLastPathComponent().appendingPathComponent(
      ".\(url.lastPathComponent).\(getpid())")
    let fd = open(temporary.path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode)
    guard fd >= 0 else { throw IdentityError(.store, "cannot create \(temporary.path): errno \(errno)") }
    let bytes = Array(text.utf8)
    var written = 0
    while written < bytes.count {
      let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, bytes.count - written) }
      guard n > 0 else {
        close(fd)
        throw IdentityError(.store, "cannot write \(temporary.path): errno \(errno)")
      }
      written += n
    }
    fchmod(fd, mode)
    close(fd)
    if rename(temporary.path, url.path) != 0 {
      throw IdentityError(.store, "cannot move \(temporary.path) to \(url.path): errno \(errno)")
    }
  }
}
