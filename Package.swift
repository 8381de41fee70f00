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
    .testTarget(name: "IntegrationTests", dependencies: ["WeftLab", "WeftLinux"]),
  ],
  swiftLanguageModes: [.v6]
)
