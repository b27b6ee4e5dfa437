// The `terdit` command: see TerDiT.Cli.CliApp and docs/CLI.md.
return TerDiT.Cli.CliApp.Run(args);
