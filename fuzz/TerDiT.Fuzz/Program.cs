// The fuzz driver: see fuzz/README.md.
//   TerDiT.Fuzz TARGET                    under afl-fuzz (SharpFuzz's out-of-process fork server)
//   TerDiT.Fuzz TARGET --replay PATH...   runs files (or every file of folders) once each; exit 1 on a finding
//   TerDiT.Fuzz --write-seeds DIR         writes the seed corpus, DIR/TARGET/*
using SharpFuzz;
using TerDiT.Fuzz;

if (args is ["--write-seeds", var seedDir])
{
    SeedCorpus.Write(seedDir);
    return 0;
}
if (args.Length == 0)
{
    Console.Error.WriteLine($"usage: TerDiT.Fuzz TARGET [--replay PATH...] | --write-seeds DIR; targets: {string.Join(", ", Targets.All.Select(t => t.Name))}");
    return 2;
}
var target = Targets.Get(args[0]);
if (args.Length > 1 && args[1] == "--replay") return Replay.Run(target, args[2..]);
Fuzzer.OutOfProcess.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    FuzzHarness.Run(target, buffer.ToArray(), checkMemory: true);
});
return 0;
