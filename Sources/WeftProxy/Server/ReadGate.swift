/// Backpressure for a handler that relays into a partner channel: a read is passed on only
/// while the partner can take more, otherwise held until the partner drains. Shared by the
/// opaque relay's two directions.
///
/// The gate only decides; the caller does `context.read()` after asking, because a read may
/// deliver data and come back into the same handler (HTTP/2 streams do), and the gate must not
/// be in the middle of a change then.
struct ReadGate {
  private var held = false

  /// True when a read should go on now (the partner can take more); otherwise it is held.
  mutating func admits(partnerWritable: Bool) -> Bool {
    if !partnerWritable { self.held = true }
    return partnerWritable
  }

  /// True (once) when a held read should go on now that the partner drained.
  mutating func release() -> Bool {
    defer { self.held = false }
    return self.held
  }
}
