#if canImport(Glibc)
import Glibc
#endif

// SwiftPM gives every executable a `main` of its own, so libFuzzer's is not linked; its driver is
// started from here instead (LLVMFuzzerRunDriver, libFuzzer's entry for programs with a main).
@_silgen_name("LLVMFuzzerRunDriver")
func runFuzzerDriver(_ argc: UnsafeMutablePointer<CInt>,
                     _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
                     _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt) -> CInt

var argumentCount = CommandLine.argc
var arguments = CommandLine.unsafeArgv
exit(runFuzzerDriver(&argumentCount, &arguments) { data, size in
    fuzzOne(data ?? UnsafePointer(bitPattern: 1)!, size)
})
