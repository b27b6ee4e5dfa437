using TerDiT.Data;
using TerDiT.Evaluation;
using TerDiT.Testing;
using Xunit;
using static TorchSharp.torch;

namespace TerDiT.Tests;

/// <summary>The evaluation classifier (committed weights, training, weights file) and the evaluator on real fixture images.</summary>
public class EvaluationClassifierTests
{
    static readonly LabeledImages TestImages = FashionMnist.Load(Split.Test, Fixtures.FashionMnistDirectory);
    static readonly LabeledImages TrainImages = FashionMnist.Load(Split.Train, Fixtures.FashionMnistDirectory);
    static readonly Lazy<FeatureClassifier> Committed = new(() => FeatureClassifier.LoadDefault());

    static string CommittedPath => Path.Combine(Fixtures.RepoRoot, "models", FeatureClassifier.DefaultFileName);

    [Fact]
    public void ImagesArePaddedWithBackgroundAndScaledToPlusMinusOne()
    {
        using var x = EvalImages.ToTensor(TestImages, 3, 2);
        Assert.Equal(new long[] { 2, 1, 32, 32 }, x.shape);
        Assert.Equal(-1f, x[.., .., 0..2, ..].max().item<float>());   // top border
        Assert.Equal(-1f, x[.., .., .., 30..].max().item<float>());   // right border
        for (int r = 0; r < 28; r += 9)
            for (int c = 0; c < 28; c += 5)
                Assert.Equal(TestImages.Pixels[4 * 784 + r * 28 + c] / 127.5f - 1, x[1, 0, r + 2, c + 2].item<float>(), 1e-6f);
        var rgb = new LabeledImages(new byte[3 * 28 * 28], [0], 3, 28, 28, FashionMnist.ClassNames);
        Assert.Contains("single-channel", Assert.Throws<ArgumentException>(() => EvalImages.ToTensor(rgb)).Message);
    }

    [Fact]
    public void CommittedClassifierRecognisesRealFixtureImages()
    {
        var model = Committed.Value;
        Assert.NotNull(model.Provenance);
        Assert.True(model.Provenance!.TestAccuracy >= 0.9, $"stored test accuracy {model.Provenance.TestAccuracy}");
        Assert.Equal(10000, model.Provenance.TestImages);
        double accuracy = model.Accuracy(TestImages);
        Assert.True(accuracy >= 0.85, $"accuracy on the 256 fixture test images: {accuracy:P1}");
    }

    [Fact]
    public void TrainingIsDeterministicForASeedAndLearns()
    {
        // 128 images = one full batch a step, so each epoch's reported loss is the loss on the same set.
        var small = TrainImages.Take(128);
        var losses = new List<double>();
        using var a = FeatureClassifier.Train(small, 4, seed: 7, progress: p => losses.Add(p.Loss));
        using var b = FeatureClassifier.Train(small, 4, seed: 7);
        using var c = FeatureClassifier.Train(small, 4, seed: 8);
        var sa = a.state_dict(); var sb = b.state_dict(); var sc = c.state_dict();
        Assert.All(sa, kv => Assert.True(kv.Value.eq(sb[kv.Key]).all().item<bool>(), $"{kv.Key} differs between runs with one seed"));
        Assert.False(sa["conv1.weight"].eq(sc["conv1.weight"]).all().item<bool>(), "another seed gave the same weights");
        Assert.Equal(4, losses.Count);
        Assert.True(losses[^1] < 0.85 * losses[0], $"training loss should fall: {string.Join(", ", losses.Select(l => l.ToString("F3")))}");
    }

    [Fact]
    public void SavedWeightsLoadBackExactly()
    {
        using var dir = new TempDirectory("clf");
        var path = dir.File("clf.safetensors");
        var provenance = new ClassifierProvenance(256, 1, 3, 0.5, 256, 1);
        using (var model = FeatureClassifier.Train(TrainImages.Take(256), 1, seed: 3))
        {
            model.Save(path, provenance);
            using var loaded = FeatureClassifier.Load(path);
            Assert.Equal(provenance, loaded.Provenance);
            using var x = EvalImages.ToTensor(TestImages, 0, 32);
            var (fa, pa) = model.Embed(x);
            var (fb, pb) = loaded.Embed(x);
            Assert.True(fa.eq(fb).all().item<bool>(), "features differ after a save/load round trip");
            Assert.Equal(pa, pb);
        }
        Assert.False(File.Exists(path + ".tmp"), "temp file left behind");
    }

    [Fact]
    public void CorruptWeightsAreRefusedWithAClearMessage()
    {
        var good = File.ReadAllBytes(CommittedPath);
        using var dir = new TempDirectory("clf");
        var path = dir.File("clf.safetensors");
        string Fails(byte[] bytes)
        {
            File.WriteAllBytes(path, bytes);
            return Assert.Throws<InvalidDataException>(() => FeatureClassifier.Load(path)).Message;
        }
        var flipped = (byte[])good.Clone();
        flipped[^100] ^= 0x40;
        Assert.Contains("checksum mismatch", Fails(flipped));
        Assert.Contains("truncated", Fails(good[..(good.Length / 3)]));
        Assert.Contains("does not fit", Fails(good[..100]));
        Assert.Contains("shorter than", Fails(good[..5]));
        var garbage = (byte[])good.Clone();
        garbage[8] = (byte)'x';
        Assert.Contains("not a JSON object", Fails(garbage));
        var otherArch = (byte[])good.Clone();
        int at = otherArch.AsSpan().IndexOf(System.Text.Encoding.ASCII.GetBytes(FeatureClassifier.Architecture));
        otherArch[at + FeatureClassifier.Architecture.Length - 1] = (byte)'X'; // header only: the checksum still matches
        Assert.Contains("architecture 'fmnist-cnn-c32-c64-c128-gaX'", Fails(otherArch));
        Assert.Contains(path, Fails(flipped));
        var missing = Assert.Throws<FileNotFoundException>(() => FeatureClassifier.Load("/nonexistent/clf.safetensors"));
        Assert.Contains("not found", missing.Message);
    }

    [Fact]
    public void EvaluatorScoresRealImagesWellAndNoisyOnesWorse()
    {
        using var evaluator = new Evaluator(Committed.Value, TrainImages);
        using var real = EvalImages.ToTensor(TestImages);
        var good = evaluator.Evaluate(real, TestImages.Labels);
        Assert.Equal((256, 512, 256, 3), (good.N, good.ReferenceN, good.PrecisionRecallReferenceN, good.K));
        Assert.True(good.ClassAccuracy >= 0.85, $"class accuracy {good.ClassAccuracy}");

        using var g = new Generator(5);
        using var noisy = (real + 0.6 * randn(real.shape, generator: g)).clamp(-1, 1);
        var bad = evaluator.Evaluate(noisy, TestImages.Labels);
        Assert.True(bad.Fid > 5 * good.Fid, $"noisy FID {bad.Fid} vs real FID {good.Fid}");
        Assert.True(bad.Precision < good.Precision, $"noisy precision {bad.Precision} vs real {good.Precision}");

        var wrongClasses = TestImages.Labels.Select(y => (y + 1) % 10).ToArray();
        Assert.True(evaluator.Evaluate(real, wrongClasses).ClassAccuracy < 0.15, "accuracy against wrong requested classes should be low");
        Assert.Contains("requested classes", Assert.Throws<ArgumentException>(() => evaluator.Evaluate(real, wrongClasses[..10])).Message);
        using var badShape = zeros(4, 1, 28, 28);
        Assert.Contains("(N, 1, 32, 32)", Assert.Throws<ArgumentException>(() => evaluator.Evaluate(badShape, [0, 1, 2, 3])).Message);
    }

    [Fact]
    public void EvaluateSamplesGeneratesBalancedClassesInBatches()
    {
        using var evaluator = new Evaluator(Committed.Value, TrainImages);
        using var all = EvalImages.ToTensor(TestImages);
        var byClass = Enumerable.Range(0, 10).Select(c => new Queue<int>(Enumerable.Range(0, TestImages.Count).Where(i => TestImages.Labels[i] == c))).ToArray();
        var asked = new List<int>();
        var reports = new List<(int Done, int Total)>();
        Tensor Generate(int[] classes)
        {
            asked.AddRange(classes);
            using var idx = tensor(classes.Select(c => (long)byClass[c].Dequeue()).ToArray());
            return all.index_select(0, idx); // real images of the requested classes stand in for a model
        }
        var result = evaluator.EvaluateSamples(Generate, 100, batchSize: 32, progress: (d, t) => reports.Add((d, t)));
        Assert.Equal(Evaluator.BalancedClasses(100), asked);
        Assert.Equal(new[] { (32, 100), (64, 100), (96, 100), (100, 100) }, reports);
        Assert.Equal(100, result.N);
        Assert.True(result.ClassAccuracy >= 0.85, $"class accuracy {result.ClassAccuracy}");
        Assert.All(Enumerable.Range(0, 10), c => Assert.Equal(10, asked.Count(a => a == c)));
    }
}
