using TerDiT.Distributed;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace TerDiT.Tests;

public class DistributedBucketerTests
{
    static (string, Parameter)[] Parameters(params (long Elements, ScalarType Type)[] specs) =>
        specs.Select((s, i) => ($"p{i}", new Parameter(torch.zeros(s.Elements, s.Type)))).ToArray();

    [Fact]
    public void BucketsFillInReverseOrderUpToTheSizeAndSplitOnDtype()
    {
        // 4-byte elements, 400-byte buckets: (p5) (p4 p3) (p2 = 150 elements, alone) | dtype change | (p1) (p0).
        var ps = Parameters((10, ScalarType.Float64), (10, ScalarType.Float64), (150, ScalarType.Float32), (50, ScalarType.Float32), (40, ScalarType.Float32), (90, ScalarType.Float32));
        FakeCommunicatorGroup.Run(1, c =>
        {
            using var b = new GradientBucketer(ps, c, bucketBytes: 400);
            Assert.Equal(new[] { new[] { "p5" }, new[] { "p4", "p3" }, new[] { "p2" }, new[] { "p1", "p0" } }, b.BucketParameters.Select(x => x.ToArray()).ToArray());
        });
        var frozen = Parameters((4, ScalarType.Float32), (4, ScalarType.Float32));
        frozen[0].Item2.requires_grad = false;
        FakeCommunicatorGroup.Run(1, c =>
        {
            using var b = new GradientBucketer(frozen, c);
            Assert.Equal(new[] { "p1" }, b.BucketParameters.Single());
        });
    }

    [Fact]
    public void AveragesGradientsAcrossRanksThroughSeveralBuckets()
    {
        const int W = 3;
        long[][] shapes = [[7, 3], [5], [64], [2, 2, 2]];
        var grads = FakeCommunicatorGroup.Run(W, c =>
        {
            var ps = shapes.Select((s, i) => ($"p{i}", new Parameter(torch.zeros(s)))).ToArray();
            for (int i = 0; i < ps.Length; i++)
                ps[i].Item2.grad = torch.arange(ps[i].Item2.NumberOfElements, ScalarType.Float32).reshape(shapes[i]).mul(c.Rank + 1 + i);
            using var b = new GradientBucketer(ps, c, bucketBytes: 64);
            Assert.True(b.BucketCount >= 3);
            b.AverageGradients();
            return ps.Select(p => p.Item2.grad!.data<float>().ToArray()).ToArray();
        });
        for (int i = 0; i < shapes.Length; i++)
        {
            double meanFactor = Enumerable.Range(0, W).Average(r => r + 1 + i);
            var expected = Enumerable.Range(0, grads[0][i].Length).Select(k => (float)(k * meanFactor)).ToArray();
            for (int r = 0; r < W; r++) Assert.Equal(expected, grads[r][i]);
        }
    }

    [Fact]
    public void WithOneRankGradientsAreUntouched()
    {
        var ps = Parameters((33, ScalarType.Float32));
        ps[0].Item2.grad = torch.linspace(-1, 1, 33).mul(1.0 / 3);
        var before = ps[0].Item2.grad!.data<float>().ToArray();
        FakeCommunicatorGroup.Run(1, c => { using var b = new GradientBucketer(ps, c); b.AverageGradients(); });
        Assert.Equal(before, ps[0].Item2.grad!.data<float>().ToArray());
    }

    [Fact]
    public void AMissingGradientNamesTheParameter()
    {
        var e = Assert.Throws<InvalidOperationException>(() => FakeCommunicatorGroup.Run(2, c =>
        {
            var ps = Parameters((3, ScalarType.Float32), (3, ScalarType.Float32));
            ps[0].Item2.grad = torch.ones(3);
            if (c.Rank == 0) ps[1].Item2.grad = torch.ones(3);
            using var b = new GradientBucketer(ps, c);
            b.AverageGradients();
        }));
        Assert.Contains("p1", e.Message);
    }

    /// <summary>The data-parallel contract: W ranks with B samples each take the step of one process with W·B samples.</summary>
    [Fact]
    public void TwoRanksWithHalfBatchesMatchOneProcessWithTheWholeBatch()
    {
        const int W = 2, GlobalBatch = 8, Steps = 3;
        var gen = new torch.Generator(1234);
        var x = torch.randn([Steps, GlobalBatch, 6], generator: gen);  // (S, N, 6)
        var target = torch.randn([Steps, GlobalBatch, 3], generator: gen);
        var init = MakeModel().state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());

        float[] Train(ICommunicator? c)
        {
            using var model = MakeModel();
            model.load_state_dict(init);
            using var optimizer = torch.optim.AdamW(model.parameters(), lr: 1e-2, weight_decay: 0.01);
            using var bucketer = c is null ? null : new GradientBucketer(model.named_parameters().Select(p => (p.name, p.parameter)), c, bucketBytes: 100);
            for (int s = 0; s < Steps; s++)
            {
                using var scope = torch.NewDisposeScope();
                var xs = x[s]; var ts = target[s];                                                 // (N, ·)
                if (c is not null) { xs = DataSharding.ShardRows(xs, c.Rank, W); ts = DataSharding.ShardRows(ts, c.Rank, W); } // (N/W, ·)
                optimizer.zero_grad();
                nn.functional.mse_loss(model.forward(xs), ts).backward();
                bucketer?.AverageGradients();
                optimizer.step();
            }
            return model.parameters().SelectMany(p => p.data<float>().ToArray()).ToArray();
        }

        var single = Train(null);
        var ranks = FakeCommunicatorGroup.Run(W, c => Train(c));
        Assert.Equal(ranks[0], ranks[1]); // replicas stay bit-identical
        Assert.True(single.Zip(ranks[0]).Max(p => Math.Abs(p.First - p.Second)) < 1e-6);
        Assert.True(single.Zip(init.Values.SelectMany(t => t.data<float>().ToArray())).Max(p => Math.Abs(p.First - p.Second)) > 1e-3); // it did train
    }

    static nn.Module<Tensor, Tensor> MakeModel() => nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 3));
}
