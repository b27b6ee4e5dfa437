using TerDiT.Distributed;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace TerDiT.Tests;

public class DistributedCommunicatorTests
{
    [Fact]
    public void FakeAllReduceSumsInPlaceAndEveryRankGetsTheSameBits()
    {
        const int W = 3;
        var results = FakeCommunicatorGroup.Run(W, c =>
        {
            // Rank r contributes values whose float sum depends on the order of addition (0.1 + 0.2 + 0.3).
            using var a = torch.tensor(new[] { 0.1f * (c.Rank + 1), 1e8f * (c.Rank == 1 ? -1 : 1), 3f });
            using var b = torch.full(4, (double)c.Rank, ScalarType.Float64);
            c.AllReduceSum([a, b]);
            return (a.data<float>().ToArray(), b.data<double>().ToArray());
        });
        Assert.Equal(new[] { 0.1f + 0.2f + 0.3f, 1e8f, 9f }, new[] { results[0].Item1[0], results[0].Item1[1], results[0].Item1[2] }, new FloatTolerance(1e-6f));
        Assert.All(results[0].Item2, v => Assert.Equal(0 + 1 + 2, v));
        for (int r = 1; r < W; r++)
        {
            Assert.Equal(results[0].Item1, results[r].Item1); // bit-identical across ranks
            Assert.Equal(results[0].Item2, results[r].Item2);
        }
    }

    [Fact]
    public void FakeAverageBroadcastAndAverageScalars()
    {
        var results = FakeCommunicatorGroup.Run(4, c =>
        {
            using var x = torch.arange(6, ScalarType.Float32).mul(c.Rank + 1);
            c.AllReduceAverage(x);
            using var y = torch.full(3, (float)c.Rank);
            c.Broadcast(y, root: 2);
            var means = c.AverageScalars(CPU, c.Rank, 10 * c.Rank);
            c.Barrier();
            return (x.data<float>().ToArray(), y.data<float>().ToArray(), means);
        });
        foreach (var (x, y, means) in results)
        {
            Assert.Equal(Enumerable.Range(0, 6).Select(i => i * 2.5f), x); // mean of (r+1) over r = 0..3 is 2.5
            Assert.All(y, v => Assert.Equal(2f, v));
            Assert.Equal(new[] { 1.5, 15 }, means);
        }
    }

    [Fact]
    public void BroadcastFromRankZeroMakesReplicasIdentical()
    {
        var weights = FakeCommunicatorGroup.Run(2, c =>
        {
            torch.random.manual_seed(100 + c.Rank); // deliberately different initialisations
            using var m = nn.Linear(5, 3);
            c.BroadcastFromRankZero(m);
            return m.weight!.data<float>().ToArray().Concat(m.bias!.data<float>().ToArray()).ToArray();
        });
        Assert.Equal(weights[0], weights[1]);
    }

    [Fact]
    public void MismatchedCollectivesFailOnEveryRankInsteadOfHanging()
    {
        var e = Assert.Throws<InvalidOperationException>(() => FakeCommunicatorGroup.Run(2, c =>
        {
            using var x = torch.zeros(c.Rank == 0 ? 3 : 4);
            c.AllReduceSum(x);
        }));
        Assert.Contains("collective mismatch", e.Message);
    }

    [Fact]
    public void AFailingRankCancelsTheOthersAndItsExceptionSurfaces()
    {
        var e = Assert.Throws<ArithmeticException>(() => FakeCommunicatorGroup.Run(3, c =>
        {
            if (c.Rank == 2) throw new ArithmeticException("rank 2 broke");
            c.Barrier(); // ranks 0 and 1 would wait for rank 2 forever
        }, timeout: TimeSpan.FromMinutes(5)));
        Assert.Equal("rank 2 broke", e.Message);
    }

    [Fact]
    public void DataPointerAddressesTheFirstElementIncludingTheStorageOffset()
    {
        using var t = torch.arange(100, ScalarType.Float32);
        using var view = t.narrow(0, 37, 10);
        IntPtr basePtr = TensorMemory.DataPointer(t), viewPtr = TensorMemory.DataPointer(view);
        Assert.Equal(37 * sizeof(float), (long)viewPtr - (long)basePtr);
        unsafe { Assert.Equal(37f, *(float*)viewPtr); Assert.Equal(46f, ((float*)viewPtr)[9]); }
        using var transposed = torch.zeros(3, 4).t();
        Assert.Throws<ArgumentException>(() => TensorMemory.DataPointer(transposed));
    }

    [Fact]
    public void NcclDataTypesFollowNcclH()
    {
        Assert.Equal(7, NcclCommunicator.DataType(ScalarType.Float32));
        Assert.Equal(8, NcclCommunicator.DataType(ScalarType.Float64));
        Assert.Equal(9, NcclCommunicator.DataType(ScalarType.BFloat16));
        Assert.Equal(6, NcclCommunicator.DataType(ScalarType.Float16));
        Assert.Equal(4, NcclCommunicator.DataType(ScalarType.Int64));
        Assert.Equal(2, NcclCommunicator.DataType(ScalarType.Int32));
        Assert.Throws<ArgumentException>(() => NcclCommunicator.DataType(ScalarType.Bool));
    }

    [Fact]
    public void MissingNcclLibraryExplainsWhereToFindIt()
    {
        var saved = Environment.GetEnvironmentVariable("TERDIT_NCCL_LIBRARY");
        Environment.SetEnvironmentVariable("TERDIT_NCCL_LIBRARY", "/nonexistent/libnccl.so.2");
        try
        {
            var e = Assert.Throws<DllNotFoundException>(() => NcclCommunicator.Version());
            Assert.Contains("/nonexistent/libnccl.so.2", e.Message);
            Assert.Contains("LD_LIBRARY_PATH", e.Message);
        }
        finally { Environment.SetEnvironmentVariable("TERDIT_NCCL_LIBRARY", saved); }
    }

    [Fact]
    public void DisableNvlsSetsTheNativeEnvironment()
    {
        NcclCommunicator.DisableNvls();
        Assert.Equal("0", Environment.GetEnvironmentVariable("NCCL_NVLS_ENABLE"));
        unsafe { Assert.Equal("0", System.Runtime.InteropServices.Marshal.PtrToStringUTF8((IntPtr)getenv("NCCL_NVLS_ENABLE"))); }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(3)]
    public void TheNcclSelfTestChecksPassOverFakeRanks(int worldSize)
    {
        var logs = FakeCommunicatorGroup.Run(worldSize, c =>
        {
            var log = new StringWriter();
            Assert.Equal(0, NcclSelfTest.RunChecks(c, CPU, log));
            return log.ToString();
        });
        Assert.All(logs, l => Assert.Equal(11, l.Split('\n').Count(line => line.Contains("ok  "))));
    }

    [Fact]
    public void TheNcclSelfTestChecksCatchAWrongReduction()
    {
        var failures = FakeCommunicatorGroup.Run(2, c => NcclSelfTest.RunChecks(new OffByOne(c), CPU, TextWriter.Null));
        Assert.All(failures, f => Assert.Equal(9, f)); // every check that reduces; broadcast and the untouched-outside check pass
    }

    /// <summary>Reduces correctly, then adds 1 to the first element of every tensor.</summary>
    sealed class OffByOne(ICommunicator inner) : ICommunicator
    {
        public int Rank => inner.Rank;
        public int WorldSize => inner.WorldSize;
        public void AllReduceSum(IReadOnlyList<Tensor> tensors)
        {
            inner.AllReduceSum(tensors);
            using var _ = torch.no_grad();
            foreach (var t in tensors) using (var first = t.view(-1)[0]) first.add_(1);
        }
        public void Broadcast(Tensor tensor, int root) => inner.Broadcast(tensor, root);
        public void Barrier() => inner.Barrier();
        public void Dispose() { }
    }

    [System.Runtime.InteropServices.DllImport("libc.so.6")]
    static extern unsafe byte* getenv(string name);

    sealed class FloatTolerance(float relative) : IEqualityComparer<float>
    {
        public bool Equals(float a, float b) => Math.Abs(a - b) <= relative * Math.Max(1f, Math.Abs(b));
        public int GetHashCode(float v) => 0;
    }
}
