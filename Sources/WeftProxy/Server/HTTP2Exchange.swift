import NIOCore
import NIOHPACK
import NIOHTTP2

/// One client stream of an ``HTTP2Session``: on its HEADERS, picks an endpoint and opens a
/// stream there (a leg); then relays HEADERS and DATA both ways. Until the leg is open, frames
/// wait here. DATA's flow-control credit goes back to its sender once the other side took it.
///
/// With a route's retries, a complete request (up to the body limit) is kept, and an attempt
/// that fails before its answer began (connect failure, reset, refused stream, a retriable
/// status, per-try timeout) is replayed on a new leg to another endpoint after a backoff; the
/// failed answer is never seen by the client. The route's timeout (or the client's deadline
/// header, the tighter) answers 504 when no answer has begun by then.
final class HTTP2Exchange {
  private let session: HTTP2Session
  /// The client's stream.
  let id: HTTP2StreamID
  private var upstream: Upstream?
  private var leg: HTTP2Leg?
  /// Frames that came before the leg was open, with the credit each holds back.
  private var waiting: [(frame: HTTP2Frame.FramePayload, credit: Int)] = []
  private var deciding = true
  private var status = 0
  private var responseEnded = false
  /// The client's END_STREAM came; the endpoint's was relayed; the client's stream is closed.
  private var clientEnded = false
  private var upstreamEnded = false
  private var clientGone = false
  private var finished = false
  private var service = "unknown"
  private let started = UInt64(MonotonicClock.nanoseconds())
  private var sent = 0
  private var received = 0
  /// The request's frames kept for another attempt (nil: it will have none), their body bytes,
  /// and whether the client has sent all of it.
  private var kept: [HTTP2Frame.FramePayload]?
  private var keptBytes = 0
  private var requestEnded = false
  private var method = "GET"
  /// The attempt's number (1 for the first) and the endpoints tried.
  private var attempt = 1
  private var tried: Set<UInt32> = []
  /// The route's timeout or the client's deadline, the tighter.
  private var timeoutNanos: UInt64?
  /// How the last leg was reset, if it was.
  private var resetCode: HTTP2ErrorCode?

  init(session: HTTP2Session, id: HTTP2StreamID) {
    self.session = session
    self.id = id
  }

  // MARK: - From the client

  /// A HEADERS or DATA frame of the client's stream (`flowControlled`: the bytes it took from
  /// the client's windows).
  func clientFrame(_ frame: HTTP2Frame.FramePayload, flowControlled: Int = 0) {
    if case .data(let data) = frame { self.sent += data.data.readableBytes }
    if frame.endsStream { self.clientEnded = true }
    self.keep(frame)
    if let leg = self.leg {
      self.forward(frame, credit: flowControlled, on: leg)
      return
    }
    guard !self.responseEnded else {
      // Answered already: the rest of the request is dropped.
      self.session.giveBack(flowControlled, stream: self.clientEnded ? nil : self.id)
      return
    }
    self.waiting.append((frame, flowControlled))
    guard self.deciding, case .headers(let headers) = frame else { return }
    self.deciding = false
    let decision: OutboundDecision
    if self.session.inbound {
      switch self.session.admitInbound(headers.headers) {
      case .admitted(let upstream):
        decision = .service(upstream)
      case .refused(let service, let status, let message, let marker, let retryAfter):
        self.service = service
        self.answer(status: status, message: message, marker: marker, retryAfter: retryAfter)
        return
      }
    } else {
      decision = self.session.decide(headers.headers)
    }
    switch decision {
    case .service(let upstream):
      self.upstream = upstream
      self.service = upstream.service
      self.method = headers.headers.first(name: ":method") ?? "GET"
      self.tried = [upstream.endpoint.ipv4]
      self.timeoutNanos = Deadline.tighter(
        upstream.timeoutNanos,
        Deadline.milliseconds(headers.headers.first(name: Deadline.header)).map { $0 * 1_000_000 })
      if let retries = upstream.retries, retries.effectiveAttempts > 1 {
        self.kept = []
        self.keep(frame)
      }
      self.armOverallTimer()
      if upstream.delayNanos > 0 {
        self.session.metrics.decided("faults", upstream.service, kind: "delay")
        self.session.loop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(upstream.delayNanos))) {
          self.open(upstream)
        }
      } else {
        self.open(upstream)
      }
    case .noEndpoint(let service):
      self.service = service
      self.answer(status: 503, message: "service \(service) has no healthy endpoint")
    case .abort(let service, let status):
      self.service = service
      self.session.metrics.decided("faults", service, kind: "abort")
      self.answer(status: status, message: "fault injected by the route of \(service)", fault: true)
    case .overflow(let service, let limit):
      self.service = service
      self.answer(
        status: 503, message: "\(service): circuit breaker \(limit.rawValue) reached", overflow: limit)
    case .passthrough:
      self.answer(status: 502, message: "no such service")
    }
  }

  /// The client's stream closed (both ways done, reset, or the connection went): the leg goes
  /// too, unless it ended both ways and closes by itself.
  func clientClosed() {
    guard !self.clientGone else { return }
    self.clientGone = true
    self.complete(success: self.responseEnded)
    self.waiting = []
    if let leg = self.leg {
      self.leg = nil
      if self.clientEnded && self.upstreamEnded {
        leg.connection.detach(leg)
      } else {
        leg.connection.reset(leg)
      }
    }
  }

  // MARK: - From the endpoint

  /// A HEADERS or DATA frame of the response, on `leg`.
  func upstreamFrame(_ frame: HTTP2Frame.FramePayload, on leg: HTTP2Leg) {
    var credit = 0
    if case .data(let data) = frame { credit = HTTP2Credit.flowControlled(data) }
    guard leg === self.leg, !self.clientGone else {
      leg.connection.giveBack(credit, stream: nil)  // an abandoned attempt's
      return
    }
    switch frame {
    case .headers(let headers):
      if self.status == 0, let status = headers.headers.first(name: ":status").flatMap({ Int($0) }),
        status >= 200
      {
        // A retriable answer is dropped (its stream reset) and the request tried again.
        if self.tryAgain(connected: true, status: status) { return }
        self.status = status
      }
      if headers.endStream { self.responseEnded = true }
    case .data(let data):
      self.received += data.data.readableBytes
      if data.endStream { self.responseEnded = true }
    default:
      return
    }
    if frame.endsStream { self.upstreamEnded = true }
    let out = HTTP2Frame(streamID: self.id, payload: frame.relayed)
    if credit > 0 {
      let promise = self.session.loop.makePromise(of: Void.self)
      promise.futureResult.assumeIsolated().whenComplete { result in
        leg.connection.giveBack(credit, stream: self.upstreamEnded || leg.closed ? nil : leg.id)
        if case .failure = result { self.refusedResponse(leg) }
      }
      self.session.writeToClient(out, promise: promise)
    } else {
      // HEADERS are checked here, on their way to the client (not on the upstream connection):
      // a block the client's connection refuses resets the stream both ways.
      let promise = self.session.loop.makePromise(of: Void.self)
      promise.futureResult.assumeIsolated().whenFailure { _ in self.refusedResponse(leg) }
      self.session.writeToClient(out, promise: promise)
    }
    if self.responseEnded { self.complete(success: self.status < 500) }
  }

  /// `leg` closed. Once the response is complete the client's stream finishes on its own;
  /// otherwise it is tried again or reset.
  func upstreamClosed(_ leg: HTTP2Leg) {
    guard leg === self.leg else { return }
    self.leg = nil
    self.resetCode = leg.resetCode
    guard !self.responseEnded, !self.clientGone else { return }
    if self.status == 0, self.tryAgain(connected: true) { return }
    self.complete(success: false)
    if self.status == 0 {
      self.answer(status: 502, message: "the endpoint reset the stream")
    } else {
      self.responseEnded = true
      self.session.resetClient(self.id)
    }
  }

  /// A response header block the client's connection refused (an invalid field, a
  /// content-length its DATA does not match): the stream is reset both ways, as a protocol
  /// error of the endpoint's.
  private func refusedResponse(_ leg: HTTP2Leg) {
    guard !self.clientGone else { return }
    if self.leg === leg {
      self.leg = nil
      leg.connection.reset(leg)
    }
    self.complete(success: false)
    self.responseEnded = true
    self.session.resetClient(self.id, .protocolError)
  }

  // MARK: - Attempts

  /// Opens a leg to `upstream`'s endpoint for the current attempt.
  private func open(_ upstream: Upstream) {
    guard !self.clientGone, !self.responseEnded else { return }
    let attempt = self.attempt
    self.armPerTryTimer()
    let connection: HTTP2UpstreamConnection
    do {
      connection = try self.session.connection(to: upstream.endpoint, service: upstream.service)
    } catch let overflow as HTTP2Session.Overflow {
      self.answer(
        status: 503, message: "\(upstream.service): circuit breaker \(overflow.limit.rawValue) reached",
        overflow: overflow.limit)
      return
    } catch {
      if !self.tryAgain(connected: false) {
        self.answer(status: 503, message: "could not reach \(upstream.endpoint)")
      }
      return
    }
    connection.whenReady { result in
      guard self.attempt == attempt, !self.responseEnded, !self.clientGone else { return }
      switch result {
      case .success(let connection):
        self.attached(connection.open(for: self, attempt: attempt))
      case .failure:
        if !self.tryAgain(connected: false) {
          self.answer(status: 503, message: "could not reach \(upstream.endpoint)")
        }
      }
    }
  }

  /// The leg is open: send what waited, the request's HEADERS telling the next hop how long
  /// this attempt may take.
  private func attached(_ leg: HTTP2Leg) {
    self.leg = leg
    let left = self.attemptDeadline()
    let waiting = self.waiting
    self.waiting = []
    for (frame, credit) in waiting {
      if case .headers(var headers) = frame, headers.headers.first(name: ":method") != nil, let left {
        headers.headers.replaceOrAdd(name: Deadline.header, value: Deadline.value(nanoseconds: left))
        self.forward(.headers(headers), credit: credit, on: leg)
      } else {
        self.forward(frame, credit: credit, on: leg)
      }
    }
  }

  /// Writes a client frame on the leg; its DATA's credit goes back to the client once written.
  private func forward(_ frame: HTTP2Frame.FramePayload, credit: Int, on leg: HTTP2Leg) {
    guard credit > 0 else {
      leg.connection.write(leg.id, frame.relayed)
      return
    }
    let promise = self.session.loop.makePromise(of: Void.self)
    promise.futureResult.assumeIsolated().whenComplete { _ in
      self.session.giveBack(credit, stream: self.clientEnded || self.clientGone ? nil : self.id)
    }
    leg.connection.write(leg.id, frame.relayed, promise: promise)
  }

  /// Keeps a request frame for another attempt while the request may have one.
  private func keep(_ frame: HTTP2Frame.FramePayload) {
    guard self.kept != nil, let retries = self.upstream?.retries else { return }
    switch frame {
    case .headers(let headers): if headers.endStream { self.requestEnded = true }
    case .data(let data):
      self.keptBytes += data.data.readableBytes
      if data.endStream { self.requestEnded = true }
    default: return
    }
    if self.keptBytes > retries.effectiveMaxBodyBytes {
      self.kept = nil  // too large to keep: this stream is not retried
    } else {
      self.kept!.append(frame)
    }
  }

  /// After a failed attempt with no answer passed on (`status` when the endpoint answered one
  /// that is retriable): starts the next attempt on another leg, if the policy, the request
  /// and the budget allow; true when it did.
  private func tryAgain(connected: Bool, timedOut: Bool = false, status: Int? = nil) -> Bool {
    guard !self.clientGone, let upstream = self.upstream, let retries = upstream.retries,
      let kept = self.kept, self.requestEnded, self.attempt < retries.effectiveAttempts
    else { return false }
    let refused = self.resetCode == .refusedStream
    let worth =
      status.map { retries.retries(status: $0) }
      ?? retries.retriesFailure(connected: connected, timedOut: timedOut, refused: refused)
    guard worth, refused || retries.allows(method: self.method),
      let next = self.session.retry(upstream, avoiding: self.tried)
    else { return false }
    self.session.finish(upstream, success: false, status: status, superseded: true)
    if let leg = self.leg {
      self.leg = nil
      leg.connection.reset(leg)
    }
    self.upstream = next
    self.attempt += 1
    self.tried.insert(next.endpoint.ipv4)
    self.status = 0
    self.resetCode = nil
    self.waiting = kept.map { ($0, 0) }  // their credit went back with the first attempt
    self.session.metrics.retried(next.service)
    var random = SystemRandomNumberGenerator()
    let wait = (retries.backoff).delay(attempt: self.attempt - 1, using: &random)
    let attempt = self.attempt
    self.session.loop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(wait))) {
      guard self.attempt == attempt, !self.responseEnded else { return }
      self.open(next)
    }
    return true
  }

  /// Gives up on an attempt that has not begun answering within the per-try timeout.
  private func armPerTryTimer() {
    guard let perTry = self.upstream?.retries?.perTryTimeoutMilliseconds else { return }
    let attempt = self.attempt
    self.session.loop.assumeIsolated().scheduleTask(in: .milliseconds(Int64(perTry))) {
      guard self.attempt == attempt, self.status == 0, !self.responseEnded, !self.clientGone else { return }
      if self.tryAgain(connected: true, timedOut: true) { return }
      self.session.metrics.decided("timeouts", self.service, kind: "per-try")
      self.abandonLeg()
      self.answer(status: 504, message: "the endpoint did not answer in time")
    }
  }

  /// The stream's overall timeout: 504 when no answer has begun, a reset when one has.
  private func armOverallTimer() {
    guard let timeout = self.timeoutNanos else { return }
    self.session.loop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(timeout))) {
      guard !self.responseEnded, !self.finished, !self.clientGone else { return }
      self.session.metrics.decided("timeouts", self.service, kind: "overall")
      self.attempt += 1  // whatever attempt is under way is abandoned
      self.abandonLeg()
      if self.status == 0 {
        self.answer(status: 504, message: "upstream request timeout")
      } else {
        self.complete(success: false)
        self.responseEnded = true
        self.session.resetClient(self.id)
      }
    }
  }

  private func abandonLeg() {
    guard let leg = self.leg else { return }
    self.leg = nil
    leg.connection.reset(leg)
  }

  /// The per-try timeout or what is left of the overall one, the tighter.
  private func attemptDeadline() -> UInt64? {
    let now = UInt64(MonotonicClock.nanoseconds())
    let left = self.timeoutNanos.map { self.started + $0 > now ? self.started + $0 - now : 0 }
    return Deadline.tighter(
      left, self.upstream?.retries?.perTryTimeoutMilliseconds.map { UInt64($0) * 1_000_000 })
  }

  // MARK: - Helpers

  private func complete(success: Bool) {
    guard !self.finished else { return }
    self.finished = true
    if let upstream = self.upstream {
      self.session.finish(upstream, success: success, status: self.status == 0 ? nil : self.status)
    }
    guard !self.session.inbound else { return }  // counted by the caller's sidecar
    self.session.metrics.request(
      to: self.service, protocol: "http2", status: self.status == 0 ? nil : self.status,
      nanoseconds: UInt64(MonotonicClock.nanoseconds()) &- self.started, sent: self.sent,
      received: self.received)
  }

  /// Answers the stream from the proxy itself.
  private func answer(
    status: Int, message: String, fault: Bool = false, overflow: CircuitBreaker.Limit? = nil,
    marker: String? = nil, retryAfter: Int? = nil
  ) {
    guard !self.clientGone else { return }
    for (_, credit) in self.waiting {
      self.session.giveBack(credit, stream: self.clientEnded ? nil : self.id)
    }
    self.waiting = []
    self.status = status
    self.complete(success: false)
    self.responseEnded = true
    var headers = HPACKHeaders([
      (":status", String(status)), ("content-type", "text/plain"),
      ("x-weft-proxy", marker ?? (fault ? "fault" : "error")),
    ])
    if let overflow { headers.add(name: "x-weft-overflow", value: overflow.rawValue) }
    if let retryAfter { headers.add(name: "retry-after", value: String(retryAfter)) }
    self.session.writeToClient(HTTP2Frame(streamID: self.id, payload: .headers(.init(headers: headers))))
    let body = ByteBuffer(string: message + "\n")
    self.session.writeToClient(
      HTTP2Frame(streamID: self.id, payload: .data(.init(data: .byteBuffer(body), endStream: true))))
  }
}

extension HTTP2Frame.FramePayload {
  /// The frame as it goes to the other hop: HEADERS and DATA without this hop's priority and
  /// padding (stream dependencies name this connection's streams).
  var relayed: HTTP2Frame.FramePayload {
    switch self {
    case .headers(let headers) where headers.priorityData != nil || headers.paddingBytes != nil:
      return .headers(.init(headers: headers.headers, endStream: headers.endStream))
    case .data(let data) where data.paddingBytes != nil:
      return .data(.init(data: data.data, endStream: data.endStream))
    default:
      return self
    }
  }

  /// Whether the frame ends its sender's side of the stream.
  var endsStream: Bool {
    switch self {
    case .headers(let headers): return headers.endStream
    case .data(let data): return data.endStream
    default: return false
    }
  }
}
