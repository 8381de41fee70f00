import Foundation
import WeftCNI

// A CNI plugin: the command in CNI_COMMAND, the configuration on stdin, the result on stdout.
let stdin = FileHandle.standardInput.readDataToEndOfFile()
let output: Data
let status: Int32
do {
  let request = try CNIRequest.parse(environment: ProcessInfo.processInfo.environment, stdin: stdin)
  (output, status) = await CNIPlugin.run(request)
} catch {
  output = error.json(cniVersion: "1.0.0")
  status = 1
}
FileHandle.standardOutput.write(output)
exit(status)
