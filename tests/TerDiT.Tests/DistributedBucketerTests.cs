using TerDiT.Distributed;
using TerDiT.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace TerDiT.Tests;

public class DistributedBucketerTests
{
    [Fact]
    public void BucketsAreConsecutiveSlicesOfAtMostTheSize()
    {
        using var grad = torch.zeros(250);                        // 4-byte elements, 400-byte buckets
        FakeCommunicatorGroup.Run(1, c =>
        {
            using var b = new GradientBucketer(grad, c, bucketBytes: 400);
            Assert.Equal(new long[] { 100, 100, 50 }, b.BucketElements);
        });
        using var matrix = torch.zeros(4, 4);
        Assert.Throws<ArgumentException>(() => FakeCommunicatorGroup.Run(1, c => { using var _ = new GradientBucketer(matrix, c); }));
    }

    [Fact]
    public void AveragesGradientsAcrossRanksThroughSeveralBuckets()
    {
        const int W = 3;
        long[][] shapes = [[7, 3], [5], [64], [2, 2, 2]];
        var grads = FakeCommunicatorGroup.Run(W, c =>
        {
            var ps = shapes.Select((s, i) => ($"p{i}", new Parameter(torch.zeros(s)))).ToArray();
            using var flat = new FlatParameters(ps);
            for (int i = 0; i < ps.Length; i++)
                ps[i].Item2.grad!.copy_(torch.arange(ps[i].Item2.NumberOfElements, ScalarType.Float32).reshape(shapes[i]).mul(c.Rank + 1 + i));
            using var b = new GradientBucketer(flat.Grad, c, bucketBytes: 64);
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
        using var grad = torch.linspace(-1, 1, 33).mul(1.0 / 3);
        var before = grad.data<float>().ToArray();
        FakeCommunicatorGroup.Run(1, c => { using var b = new GradientBucketer(grad, c); b.AverageGradients(); });
        Assert.Equal(before, grad.data<float>().ToArray());
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
            using var flat = new FlatParameters(model.named_parameters().Select(p => (p.name, p.parameter)));
            using var optimizer = new AdamW(flat, lr: 1e-2, weightDecay: 0.01);
            using var bucketer = c is null ? null : new GradientBucketer(flat.Grad, c, bucketBytes: 100);
            for (int s = 0; s < Steps; s++)
            {
                using var scope = torch.NewDisposeScope();
                var xs = x[s]; var ts = target[s];                                                 // (N, ·)
                if (c is not null) { xs = DataSharding.ShardRows(xs, c.Rank, W); ts = DataSharding.ShardRows(ts, c.Rank, W); } // (N/W, ·)
                flat.ZeroGrad();
                nn.functional.mse_loss(model.forward(xs), ts).backward();
                bucketer?.AverageGradients();
                optimizer.Step();
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
