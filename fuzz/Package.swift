// swift-tools-version: 6.1
// libFuzzer targets for the WeftWire decoders and the userspace VTEP's packet paths. Build and run with ./run.sh (it passes
// -sanitize=fuzzer,address to every module so WeftWire itself is instrumented).
import PackageDescription

let decoders = ["ethernet", "arp", "ipv4", "ipv6", "icmp", "udp", "vxlan", "frame"]

let package = Package(
  name: "WeftFuzz",
  dependencies: [
    .package(name: "Weft", path: ".."),
    .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
  ],
  targets: [
    .target(name: "CFuzzDriver"),
    .target(
      name: "FuzzSupport",
      dependencies: [
        "CFuzzDriver",
        .product(name: "WeftWire", package: "Weft"),
        .product(name: "NIOCore", package: "swift-nio"),
      ]
    ),
  ]
    + (decoders + ["vtep"]).map { name in
      .executableTarget(
        name: "fuzz-\(name)",
        dependencies: ["FuzzSupport"]
          + (name == "vtep" ? [.product(name: "WeftDatapath", package: "Weft")] : []),
        path: "Sources/fuzz-\(name)",
        swiftSettings: [.unsafeFlags(["-parse-as-library"])]
      )
    },
  swiftLanguageModes: [.v6]
)
