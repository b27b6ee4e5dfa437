// The `terdit` command: see TerDiT.Cli.CliApp and docs/CLI.md.
int code = TerDiT.Cli.CliApp.Run(args);
// Test hook (undocumented for users): TERDIT_DUMP_MAPS=FILE copies /proc/self/maps, the mapped native libraries, to FILE at exit.
if (Environment.GetEnvironmentVariable("TERDIT_DUMP_MAPS") is { Length: > 0 } maps) File.WriteAllText(maps, File.ReadAllText("/proc/self/maps"));
return code;
