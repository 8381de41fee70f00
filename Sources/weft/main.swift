import WeftCLI

WeftCommand.main()
