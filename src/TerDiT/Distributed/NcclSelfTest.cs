using TorchSharp;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace TerDiT.Distributed;

/// <summary>
/// Checks NCCL through <see cref="NcclCommunicator"/> on real GPUs: sum all-reduce in every supported
/// dtype (including a view with a storage offset), average, broadcast, a multi-bucket
/// <see cref="GradientBucketer"/> pass and a barrier. Run in one process (world size 1) or in every
/// rank of a launched world (the rank and world size come from <see cref="DistributedEnvironment"/>).
/// Each check compares against values computed on the CPU and prints one line. The checks themselves
/// (<see cref="RunChecks"/>) take any communicator and device, so they are tested on the CPU with fake ranks.
/// </summary>
public static class NcclSelfTest
{
    /// <summary>Runs all checks; returns 0 when they pass, 1 otherwise (the failures are printed).</summary>
    public static int Run(TextWriter log, TimeSpan rendezvousTimeout)
    {
        torch.InitializeDeviceType(DeviceType.CUDA);
        if (!torch.cuda.is_available()) { log.WriteLine("nccl-selftest: CUDA is not available"); return 1; }
        var env = DistributedEnvironment.Read();
        log.WriteLine($"nccl-selftest: NCCL {NcclCommunicator.Version()}, {(env is null ? "single process" : $"rank {env.Rank} of {env.WorldSize}")}, " +
                      $"CUDA_VISIBLE_DEVICES={Environment.GetEnvironmentVariable("CUDA_VISIBLE_DEVICES") ?? "(unset)"}");
        using var comm = env is null ? NcclCommunicator.CreateSingle() : NcclCommunicator.Create(env, rendezvousTimeout);
        log.WriteLine($"nccl-selftest: communicator ready, {DistributedEnvironment.NvlsVariable}={Environment.GetEnvironmentVariable(DistributedEnvironment.NvlsVariable)}");
        int failures = RunChecks(comm, torch.CUDA, log);
        comm.Barrier();
        log.WriteLine(failures == 0 ? $"nccl-selftest: PASSED (rank {comm.Rank} of {comm.WorldSize})" : $"nccl-selftest: {failures} check(s) FAILED (rank {comm.Rank} of {comm.WorldSize})");
        return failures == 0 ? 0 : 1;
    }

    /// <summary>Runs every check through <paramref name="comm"/> with tensors on <paramref name="device"/>; returns the number that failed.</summary>
    public static int RunChecks(ICommunicator comm, Device device, TextWriter log)
    {
        int failures = 0;
        void Report(string name, double error, double tolerance)
        {
            bool ok = error <= tolerance;
            if (!ok) failures++;
            log.WriteLine($"  {(ok ? "ok  " : "FAIL")} {name}: max |error| {error:g3} (tolerance {tolerance:g3})");
        }
        int r = comm.Rank, w = comm.WorldSize;
        using var sc = new ScalarHolder();

        // Sum: rank r contributes (r+1)·v with v small integers, exact in every dtype; expected W(W+1)/2·v.
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.Float64, ScalarType.BFloat16, ScalarType.Float16, ScalarType.Int32, ScalarType.Int64 })
        {
            using var scope = torch.NewDisposeScope();
            var v = torch.arange(sc.Of(0), sc.Of(1_000_003), sc.Of(1), ScalarType.Int64).remainder(sc.Of(7)).sub_(sc.Of(3));                 // (n) values −3..3
            var x = v.mul(sc.Of(r + 1)).to(dtype, device);
            comm.AllReduceSum(x);
            var expected = v.mul(sc.Of(w * (w + 1) / 2)).to(ScalarType.Float64);
            Report($"AllReduceSum {dtype}", x.cpu().to(ScalarType.Float64).sub(expected).abs().max().item<double>(), 0);
        }
        using (var scope = torch.NewDisposeScope())
        {
            // A view starting 1000 elements into its storage: the data pointer must include the offset.
            var full = torch.full(5000, sc.Of(100.0), device: device);
            var view = full.narrow(0, 1000, 3000);
            view.fill_(sc.Of(r + 1));
            comm.AllReduceSum(view);
            var outside = torch.cat([full.narrow(0, 0, 1000), full.narrow(0, 4000, 1000)]).sub(sc.Of(100)).abs().max().item<float>();
            Report("AllReduceSum of an offset view (inside)", view.sub(sc.Of(w * (w + 1) / 2.0)).abs().max().item<float>(), 0);
            Report("AllReduceSum of an offset view (outside untouched)", outside, 0);

            var y = torch.linspace(-1, 1, 4097, device: device).mul(sc.Of(r + 1));
            comm.AllReduceAverage(y);
            Report("AllReduceAverage float32", y.sub(torch.linspace(-1, 1, 4097, device: device).mul(sc.Of((w + 1) / 2.0))).abs().max().item<float>(), 1e-5); // |y| ≤ (W+1)/2, float32 sums

            var b = torch.full(257, sc.Of(r + 10.0), ScalarType.Float64, device);
            comm.Broadcast(b, 0);
            Report("Broadcast from rank 0", b.sub(sc.Of(10)).abs().max().item<double>(), 0);
        }
        using (var scope = torch.NewDisposeScope())
        {
            // Gradients of rank r are (r+1)·g0; after averaging they must be (W+1)/2·g0 on every rank. Buckets of 4 KiB force several.
            var shapes = new long[][] { [300, 7], [13], [1024], [5, 5, 5], [2000] };
            var ps = shapes.Select((s, i) => ($"p{i}", new Parameter(torch.zeros(s, device: device)))).ToArray();
            var g0 = shapes.Select((s, i) => torch.arange(sc.Of(0), sc.Of(s.Aggregate(1L, (a, d) => a * d)), sc.Of(1), ScalarType.Float32).mul(sc.Of(0.37 + i)).sin().reshape(s)).ToArray();
            using var flat = new Training.FlatParameters(ps);
            for (int i = 0; i < ps.Length; i++) ps[i].Item2.grad!.copy_(g0[i].mul(sc.Of(r + 1)));
            using var bucketer = new GradientBucketer(flat.Grad, comm, bucketBytes: 4096);
            bucketer.AverageGradients();
            double err = 0;
            for (int i = 0; i < ps.Length; i++)
                err = Math.Max(err, ps[i].Item2.grad!.cpu().sub(g0[i].mul(sc.Of((w + 1) / 2.0))).abs().max().item<float>());
            Report($"GradientBucketer ({bucketer.BucketCount} buckets)", err, 1e-5);
        }
        return failures;
    }
}
