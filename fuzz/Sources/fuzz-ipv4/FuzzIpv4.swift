import FuzzSupport

/// libFuzzer entry point: one input through the ipv4 decoder.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
  fuzzInput(data, size, fuzzIPv4)
  return 0
}

/// The process entry point. SwiftPM links ELF executables with `--defsym main=<module>_main`
/// (so tests can link them), which `-parse-as-library` never defines; defining it here and
/// handing over to libFuzzer's driver makes the same binary work with or without that renaming.
@_cdecl("fuzz_ipv4_main")
public func fuzzMain(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
  runFuzzer(argc, argv) { data, size in fuzzTestOneInput(data, size) }
}
