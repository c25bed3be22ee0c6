import SluiceSDK

/// Appends a newline-terminated line (given without its newline) without one carriage return directly before the
/// newline. The rule shared with the socket source (docs/pipeline.md, "Line endings"): a line ends at `\n`, or at the
/// end of the input; one `\r` directly before the `\n` is removed; any other `\r` is data.
@inline(__always)
func appendLine(_ line: UnsafeRawBufferPointer, _ output: inout BatchBuilder) {
    if let last = line.last, last == 13 {
        output.append(UnsafeRawBufferPointer(rebasing: line.dropLast()))
    } else {
        output.append(line)
    }
}
