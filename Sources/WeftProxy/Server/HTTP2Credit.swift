import NIOCore
import NIOHTTP2

/// Inbound flow control for one connection of the HTTP/2 relay, which runs `NIOHTTP2Handler`
/// without a stream multiplexer: the handler tracks the windows, and giving them back is the
/// relay's job.
///
/// The bytes of a DATA frame are given back to their sender only once the relay has passed them
/// on (their write on the other connection completed, or they were dropped), so a slow reader
/// holds a fast writer back by at most one stream window per stream and one connection window,
/// with no read gating and no buffer of the relay's own. Credit goes back in WINDOW_UPDATE
/// frames of at least a quarter of the window, not one per DATA frame.
struct HTTP2Credit {
  /// The stream window this side advertises (SETTINGS_INITIAL_WINDOW_SIZE).
  let streamWindow: Int
  /// The connection window this side grows to once the peer's preface came.
  let connectionWindow: Int
  /// Whether the connection window was grown from the protocol's 65,535 bytes yet.
  private(set) var grown = false
  private var connectionOwed = 0
  private var streamOwed: [HTTP2StreamID: Int] = [:]

  init(streamWindow: Int, connectionWindow: Int) {
    self.streamWindow = streamWindow
    self.connectionWindow = connectionWindow
  }

  /// The bytes a DATA frame takes from the windows: its data, its padding and the padding's
  /// length byte.
  static func flowControlled(_ data: HTTP2Frame.FramePayload.Data) -> Int {
    data.data.readableBytes + (data.paddingBytes.map { $0 + 1 } ?? 0)
  }

  /// The WINDOW_UPDATE that grows the connection window to its target, the first time the
  /// peer's SETTINGS arrive (nil after that).
  mutating func growConnection() -> HTTP2Frame? {
    guard !self.grown else { return nil }
    self.grown = true
    let increment = self.connectionWindow - 65_535
    guard increment > 0 else { return nil }
    return HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: increment))
  }

  /// Takes back `bytes` of `stream` (nil: the stream is closed or its sender has finished, so
  /// only the connection's window matters); returns the WINDOW_UPDATE frames now due.
  mutating func give(_ bytes: Int, stream: HTTP2StreamID?) -> (stream: HTTP2Frame?, connection: HTTP2Frame?) {
    guard bytes > 0 else { return (nil, nil) }
    var streamUpdate: HTTP2Frame?
    if let stream {
      let owed = self.streamOwed[stream, default: 0] + bytes
      if owed >= self.streamWindow / 4 {
        self.streamOwed[stream] = 0
        streamUpdate = HTTP2Frame(streamID: stream, payload: .windowUpdate(windowSizeIncrement: owed))
      } else {
        self.streamOwed[stream] = owed
      }
    }
    self.connectionOwed += bytes
    // Before the connection window was grown, the peer has only 65,535 bytes: give them back early.
    let threshold = self.grown ? self.connectionWindow / 4 : 16_384
    guard self.connectionOwed >= threshold else { return (streamUpdate, nil) }
    let owed = self.connectionOwed
    self.connectionOwed = 0
    return (
      streamUpdate, HTTP2Frame(streamID: .rootStream, payload: .windowUpdate(windowSizeIncrement: owed))
    )
  }

  /// Forgets a stream that closed.
  mutating func closed(_ stream: HTTP2StreamID) {
    self.streamOwed[stream] = nil
  }
}
