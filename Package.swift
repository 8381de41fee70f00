// swift-tools-version: 6.1
import PackageDescription

let package = Package(
  name: "Weft",
  products: [
    .executable(name: "weft", targets: ["weft"]),
    .library(name: "WeftWire", targets: ["WeftWire"]),
    .library(name: "WeftLinux", targets: ["WeftLinux"]),
    .library(name: "WeftLab", targets: ["WeftLab"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
    .package(url: "https://github.com/jpsim/Yams.git", from: "6.2.2"),
    .package(url: "https://github.com/groue/GRDB.swift.git", from: "7.10.0"),
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
    .target(name: "WeftModel", dependencies: ["WeftWire", .product(name: "Yams", package: "Yams")]),
    .target(name: "WeftStore", dependencies: ["WeftModel", .product(name: "GRDB", package: "GRDB.swift")]),
    .target(name: "WeftLab", dependencies: ["WeftLinux", "WeftWire"]),
    .target(
      name: "WeftCLI",
      dependencies: [
        "WeftLab", "WeftLinux", "WeftWire",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),
    .executableTarget(name: "weft", dependencies: ["WeftCLI"]),
    .testTarget(
      name: "WeftWireTests",
      dependencies: ["WeftWire", .product(name: "NIOCore", package: "swift-nio")]
    ),
    .testTarget(name: "WeftLinuxTests", dependencies: ["WeftLinux", "CWeftLinux"]),
    .testTarget(name: "WeftModelTests", dependencies: ["WeftModel", "WeftWire"]),
    .testTarget(name: "WeftStoreTests", dependencies: ["WeftStore", "WeftModel"]),
    .testTarget(name: "IntegrationTests", dependencies: ["WeftLab", "WeftLinux"]),
  ],
  swiftLanguageModes: [.v6]
)
