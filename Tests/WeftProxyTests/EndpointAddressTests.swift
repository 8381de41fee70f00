import NIOCore
import Testing

@testable import WeftProxy

@Suite struct EndpointAddressTests {
  @Test func printsAndParses() {
    let address = EndpointAddress(10, 96, 1, 7, port: 8080)
    #expect(address.ipv4 == 0x0A60_0107)
    #expect(address.description == "10.96.1.7:8080")
    #expect(EndpointAddress("10.96.1.7:8080") == address)
    #expect(EndpointAddress("0.0.0.0:0") == EndpointAddress(ipv4: 0, port: 0))
    #expect(EndpointAddress("255.255.255.255:65535") == EndpointAddress(ipv4: .max, port: .max))
  }

  @Test(arguments: [
    "", "10.0.0.1", "10.0.0.1:", "10.0.0:80", "10.0.0.1.2:80", "10.0.0.256:80", "10.0.0.1:65536",
    "10.0.0.01:80", "10.0.0.1:+80", "10.0.0.-1:80", "::1:80", "a.b.c.d:80",
  ])
  func rejectsMalformed(_ text: String) {
    #expect(EndpointAddress(text) == nil)
  }

  @Test func readsASocketAddressBothWaysRound() throws {
    let socket = try SocketAddress(ipAddress: "100.96.1.7", port: 8080)
    let address = try #require(EndpointAddress(socketAddress: socket))
    #expect(address == EndpointAddress(100, 96, 1, 7, port: 8080))
    #expect(address.socketAddress.ipAddress == "100.96.1.7")
    #expect(address.socketAddress.port == 8080)
    #expect(EndpointAddress(socketAddress: try SocketAddress(ipAddress: "::1", port: 80)) == nil)
  }

  @Test func ordersByAddressThenPort() {
    let a = EndpointAddress(10, 0, 0, 1, port: 9000)
    let b = EndpointAddress(10, 0, 0, 2, port: 80)
    let c = EndpointAddress(10, 0, 0, 2, port: 81)
    #expect([c, b, a].sorted() == [a, b, c])
  }

  @Test func weightZeroIsRaisedToOne() {
    #expect(BalancerEndpoint(EndpointAddress(10, 0, 0, 1, port: 80), weight: 0).weight == 1)
  }
}
