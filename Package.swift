// swift-tools-version: 6.1
import PackageDescription

let package = Package(
  name: "Weft",
  products: [
    .executable(name: "weft", targets: ["weft"]),
    .executable(name: "weft-cni", targets: ["weft-cni"]),
    .executable(name: "weft-proxy", targets: ["weft-proxy"]),
    .library(name: "WeftWire", targets: ["WeftWire"]),
    .library(name: "WeftLinux", targets: ["WeftLinux"]),
    .library(name: "WeftLab", targets: ["WeftLab"]),
    .library(name: "WeftDatapath", targets: ["WeftDatapath"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
    .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.28.1"),
    .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.37.0"),
    .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
    .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
    .package(url: "https://github.com/apple/swift-certificates.git", from: "1.21.1"),
    .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
    .package(url: "https://github.com/apple/swift-asn1.git", from: "1.7.4"),
    .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
  ],
  targets: [
    .target(name: "CWeftLinux"),
    .target(
      name: "WeftWire",
      dependencies: [.product(name: "NIOCore", package: "swift-nio")]
    ),
    .target(
      name: "WeftLinux",
      dependencies: ["CWeftLinux", "WeftWire", .product(name: "NIOCore", package: "swift-nio")]
    ),
    .target(name: "WeftModel", dependencies: ["WeftWire"]),
    .target(name: "WeftManifest", dependencies: ["WeftModel", .product(name: "Yams", package: "Yams")]),
    .target(name: "WeftStore", dependencies: ["WeftModel", .product(name: "GRDB", package: "GRDB.swift")]),
    .target(
      name: "WeftIdentity",
      dependencies: [
        .product(name: "X509", package: "swift-certificates"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "SwiftASN1", package: "swift-asn1"),
      ]
    ),
    .target(
      name: "WeftControl",
      dependencies: [
        "WeftModel", "WeftManifest", "WeftStore", "WeftIdentity",
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "HummingbirdTLS", package: "hummingbird"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "Crypto", package: "swift-crypto"),
        .product(name: "X509", package: "swift-certificates"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ]
    ),
    .target(
      name: "WeftClient",
      dependencies: [
        "WeftModel", "WeftControl", "WeftIdentity",
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
      ]
    ),
    .target(name: "WeftDatapath", dependencies: ["WeftLinux", "WeftWire"]),
    .target(
      name: "WeftProxy",
      dependencies: [
        "WeftModel", "WeftWire", "WeftIdentity", .product(name: "NIOCore", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "X509", package: "swift-certificates"),
        .product(name: "NIOTLS", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOHTTP2", package: "swift-nio-http2"),
      ],
      swiftSettings: [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]
    ),
    .target(
      name: "WeftEcho",
      dependencies: [
        "WeftWire",
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "NIOHTTP2", package: "swift-nio-http2"),
        .product(name: "NIOWebSocket", package: "swift-nio"),
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
      ]
    ),
    .target(
      name: "WeftAgent",
      dependencies: [
        "WeftDatapath", "WeftModel", "WeftClient", "WeftControl", "WeftLinux", "WeftWire", "WeftProxy",
        "WeftIdentity", .product(name: "X509", package: "swift-certificates"),
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "NIOPosix", package: "swift-nio"),
      ]
    ),
    .target(
      name: "WeftCNI",
      dependencies: [
        "WeftAgent", "WeftControl",
      ]
    ),
    .executableTarget(name: "weft-cni", dependencies: ["WeftCNI"]),
    .target(
      name: "WeftLab",
      dependencies: [
        "WeftLinux", "WeftWire", "WeftModel", "WeftClient", "WeftControl", "WeftAgent", "WeftDatapath",
      ]
    ),
    .target(
      name: "WeftCLI",
      dependencies: [
        "WeftLab", "WeftLinux", "WeftWire", "WeftModel", "WeftManifest", "WeftStore", "WeftControl",
        "WeftClient",
        "WeftIdentity",
        "WeftAgent",
        "WeftDatapath",
        "WeftEcho",
        "WeftProxy",
        "WeftSidecar",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "AsyncHTTPClient", package: "async-http-client"),
        .product(name: "Hummingbird", package: "hummingbird"),
        .product(name: "HummingbirdTLS", package: "hummingbird"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
      ]
    ),
    .target(
      name: "WeftSidecar",
      dependencies: [
        "WeftProxy", "WeftLinux", .product(name: "ArgumentParser", package: "swift-argument-parser"),
        .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOHTTP1", package: "swift-nio"),
      ]
    ),
    .executableTarget(
      name: "weft-proxy",
      dependencies: [
        "WeftSidecar", "CWeftLinux", .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ],
      // The Swift runtime linked in, and no dynamic symbol table: a sidecar runs beside every
      // workload, and mapping the shared runtime libraries whole, or resolving every symbol of
      // the executable at start, holds several MB more resident. (gold prints glibc's link-time
      // note on mktemp for the toolchain's static FoundationEssentials: not from Weft's code.)
      linkerSettings: [
        .unsafeFlags(["-static-stdlib", "-Xlinker", "--no-export-dynamic"]),
        .linkedLibrary("_FoundationCollections"),
        .linkedLibrary("_FoundationCShims"),
      ]
    ),
    .executableTarget(
      name: "weft",
      dependencies: ["WeftCLI"]
    ),
    .testTarget(
      name: "WeftWireTests",
      dependencies: ["WeftWire", .product(name: "NIOCore", package: "swift-nio")]
    ),
    .testTarget(name: "WeftLinuxTests", dependencies: ["WeftLinux", "CWeftLinux"]),
    .testTarget(name: "WeftModelTests", dependencies: ["WeftModel", "WeftManifest", "WeftWire"]),
    .testTarget(name: "WeftStoreTests", dependencies: ["WeftStore", "WeftModel"]),
    .testTarget(
      name: "WeftIdentityTests",
      dependencies: ["WeftIdentity", .product(name: "X509", package: "swift-certificates")]
    ),
    .testTarget(
      name: "WeftControlTests",
      dependencies: [
        "WeftControl", "WeftClient", "WeftStore", "WeftModel", "WeftManifest", "WeftWire", "WeftIdentity",
        "WeftAgent",
        .product(name: "HummingbirdTesting", package: "hummingbird"),
        .product(name: "HummingbirdTLS", package: "hummingbird"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"),
        .product(name: "X509", package: "swift-certificates"),
      ]
    ),
    .testTarget(
      name: "WeftDatapathTests",
      dependencies: ["WeftDatapath", "WeftAgent", "WeftLinux", "WeftWire", "WeftModel"]
    ),
    .testTarget(name: "WeftCNITests", dependencies: ["WeftCNI"]),
    .testTarget(
      name: "WeftSidecarTests",
      dependencies: [
        "WeftSidecar", "WeftLinux", .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOPosix", package: "swift-nio"),
      ]
    ),
    .testTarget(
      name: "WeftProxyTests",
      dependencies: [
        "WeftProxy", "WeftModel", "WeftIdentity", .product(name: "NIOHTTP1", package: "swift-nio"),
        .product(name: "NIOSSL", package: "swift-nio-ssl"), .product(name: "NIOPosix", package: "swift-nio"),
        .product(name: "NIOTLS", package: "swift-nio"),
        .product(name: "NIOHTTP2", package: "swift-nio-http2"),
        .product(name: "NIOHPACK", package: "swift-nio-http2"),
      ]
    ),
    .testTarget(
      name: "WeftEchoTests",
      dependencies: ["WeftEcho", .product(name: "AsyncHTTPClient", package: "async-http-client")]
    ),
    .testTarget(
      name: "IntegrationTests",
      dependencies: ["WeftLab", "WeftLinux", "WeftModel", "WeftClient", "WeftWire", "WeftProxy"]),
  ],
  swiftLanguageModes: [.v6]
)
