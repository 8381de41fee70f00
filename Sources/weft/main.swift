import WeftCLI

await WeftCommand.runFromCommandLine()
