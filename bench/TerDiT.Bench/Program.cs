using TerDiT.Bench;

// TerDiT.Bench cpu-peers [options]   : ONNX Runtime fp32/int8 against the runtime's exact/a8 (CpuPeersBench)
// TerDiT.Bench child IMPL ...         : one contender in its own process, driven over stdin (CpuPeersBench.Child)
try
{
    return args.Length > 0 && args[0] == "child" ? CpuPeersBench.Child(args[1..])
        : args.Length > 0 && args[0] == "cpu-peers" ? CpuPeersBench.Run(args[1..])
        : throw new ArgumentException("usage: TerDiT.Bench cpu-peers [--presets TerDiT-S,TerDiT-600M] [--images 1,4,10] [--threads 2] "
            + "[--rounds 3] [--turn-seconds 2] [--simd native|avx2] [--work DIR] [--out FILE.json]");
}
catch (Exception e) when (e is ArgumentException or IOException or InvalidOperationException)
{
    Console.Error.WriteLine($"TerDiT.Bench: error: {e.Message}");
    return 2;
}
