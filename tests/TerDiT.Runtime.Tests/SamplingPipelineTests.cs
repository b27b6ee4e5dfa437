using TerDiT.Runtime.Config;
using TerDiT.Runtime.Cpu;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Model;
using TerDiT.Runtime.Diffusion;
using TerDiT.Testing;
using Xunit;

namespace TerDiT.Runtime.Tests;

public class SamplingPipelineTests
{
    [Fact]
    public void PipelineSamplesAreIndependentOfBatchingAndReportProgress()
    {
        var (weights, _) = ModelTestWeights.Random(ModelTests.Small, 8);
        using var big = new TerDiTPipeline(weights, new RuntimeOptions { Threads = 2, MaxBatch = 16 });
        using var small = new TerDiTPipeline(weights, new RuntimeOptions { Threads = 1, MaxBatch = 2 });
        var calls = new ProgressLog<SamplingProgress>();
        var a = big.Sample([4, 1], perClass: 3, steps: 5, SamplerKind.Ddim, guidance: 1.5, seed: 9);
        var b = small.Sample([4, 1], perClass: 3, steps: 5, SamplerKind.Ddim, guidance: 1.5, seed: 9, calls);
        Assert.Equal(6 * big.Model.InputLength, a.Length);
        Assert.Equal(a, b);
        Assert.Equal(Enumerable.Range(1, 15).Select(i => new SamplingProgress(i, 15)), calls.Reports); // 3 batches × 5 steps

        // Class-major order: image 3 (class 1, first copy) equals a single class-1 sample with the same index.
        var direct = new DiffusionSampler(big.Model.Forward, 2, 8, SamplingTests.Dit(learnSigma: true), ModelTests.Small.NullClass)
            .Sample([1], SamplerKind.Ddim, 5, 1.5, 9, firstImage: 3);
        Assert.Equal(direct, a.AsSpan(3 * big.Model.InputLength, big.Model.InputLength).ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => big.Sample([5], 1, 5, SamplerKind.Ddim, 1, 0)); // 5 = null class
    }

    [Fact]
    public void LoadedPackedFileGivesTheSameModelAsItsWeights()
    {
        var config = ModelTests.Small; // widths 32 and 96: packed rows padded to 128-trit blocks
        var (weights, _, ternary) = ModelTestWeights.RandomWithTrits(config, 4);
        using var dir = new TempDirectory("runtime");
        string path = dir.File("m.tdit");
        var metadata = new TditMetadata
        {
            Config = config, Preset = "custom", Classes = Enumerable.Range(0, config.NumClasses).Select(i => $"c{i}").ToArray(),
            Source = "random-init", Weights = TditWeights.Random, TernaryLayout = "terdit-2bit-128",
            Diffusion = new TditDiffusion { Steps = 500 },                 // not DiT's 1000 steps: the pipeline must read it
        };
        using (var writer = new TditWriter(path, metadata, TditSchema.Declarations(config, metadata.TernaryLayout, TditDType.F16)))
        {
            foreach (var p in ParameterSchema.Enumerate(config))
                switch (p.Kind)
                {
                    case ParameterKind.Full: writer.Write(p.Name, weights.Full(p.Name).Select(v => (Half)v).ToArray()); break;
                    case ParameterKind.TernaryWeight:
                        var (trits, alpha) = ternary[p.Name[..^".weight".Length]];
                        writer.Write(p.Name, TernaryPacking.Pack(trits, (int)p.Shape[0], (int)p.Shape[1]));
                        break;
                    case ParameterKind.TernaryScale: writer.Write(p.Name, [ternary[p.Name[..^".alpha".Length]].Alpha]); break;
                }
            writer.Commit();
        }

        // The same weights in memory, full-precision tensors rounded through F16 as in the file.
        var rounded = new InMemoryWeights(config);
        foreach (var p in ParameterSchema.Enumerate(config))
            if (p.Kind == ParameterKind.Full) rounded.SetFull(p.Name, weights.Full(p.Name).Select(v => (float)(Half)v).ToArray());
            else if (p.Kind == ParameterKind.TernaryWeight) rounded.SetTernary(p.Name[..^7], ternary[p.Name[..^7]].Trits, ternary[p.Name[..^7]].Alpha);

        var options = new RuntimeOptions { Threads = 2 };
        float[] fromFile, fromMemory, withDitSchedule;
        using (var pipe = TerDiTPipeline.Load(path, options))
        {
            fromFile = pipe.Sample([2, 0], 2, 4, SamplerKind.Ddpm, 2.0, 77);
            Assert.Equal(metadata.Classes, pipe.ClassNames);
            Assert.Equal(500, pipe.Diffusion.Schedule.NumTimesteps);
        }
        using (var pipe = new TerDiTPipeline(rounded, options, diffusion: DiffusionProcess.For(config, metadata.Diffusion)))
            fromMemory = pipe.Sample([2, 0], 2, 4, SamplerKind.Ddpm, 2.0, 77);
        Assert.Equal(fromMemory, fromFile);
        using (var pipe = new TerDiTPipeline(rounded, options))
            withDitSchedule = pipe.Sample([2, 0], 2, 4, SamplerKind.Ddpm, 2.0, 77);
        Assert.True(TestData.RelativeError(withDitSchedule, fromFile) > 1e-3);
    }
}
