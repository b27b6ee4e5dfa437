using TerDiT.Data;
using static TorchSharp.torch;

namespace TerDiT.Evaluation;

/// <summary>
/// Scores generated 32×32 Fashion-MNIST images against a reference set: FID, precision/recall (k-NN manifolds) and
/// class accuracy, all on <see cref="FeatureClassifier"/> features. The reference features and statistics are computed
/// once at construction, so one evaluator can score many checkpoints. Runs on the classifier's device.
/// </summary>
public sealed class Evaluator : IDisposable
{
    readonly FeatureClassifier classifier;
    readonly Tensor referenceFeatures;          // (ReferenceN, 128) float64 CPU
    readonly FeatureStatistics referenceStats;
    readonly int batchSize, k;

    /// <param name="classifier">The feature network; its device is where features and distances are computed.</param>
    /// <param name="reference">Real images (28×28 or 32×32 grey); null = the Fashion-MNIST test split (10k) from its
    /// default directory.</param>
    /// <param name="batchSize">Images per classifier call.</param>
    /// <param name="k">Neighbour index of the precision/recall manifold radii (3 as in Kynkäänniemi et al.).</param>
    public Evaluator(FeatureClassifier classifier, LabeledImages? reference = null, int batchSize = 500, int k = 3)
    {
        reference ??= FashionMnist.Load(Split.Test);
        if (reference.Count <= k) throw new ArgumentException($"the reference set needs more than k = {k} images, it has {reference.Count}");
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), "batch size must be positive");
        this.classifier = classifier; this.batchSize = batchSize; this.k = k;
        using var images = EvalImages.ToTensor(reference);
        (referenceFeatures, _) = classifier.Embed(images, batchSize);
        referenceStats = FeatureStatistics.FromFeatures(referenceFeatures);
    }

    public int ReferenceCount => referenceStats.Count;

    /// <summary>Scores <paramref name="generated"/> (N, 1, 32, 32) in [-1, 1] (clamped), any device, sample i generated for
    /// class <paramref name="requestedClasses"/>[i]. N must exceed k (and be ≥ 2 for FID).</summary>
    public EvalResult Evaluate(Tensor generated, int[] requestedClasses)
    {
        var (features, predictions) = classifier.Embed(generated, batchSize);
        using (features) return Score(features, predictions, requestedClasses);
    }

    /// <summary>
    /// Generates <paramref name="n"/> images with <paramref name="generate"/> in batches of <paramref name="batchSize"/>
    /// and scores them. Requested classes are balanced: sample i asks for class i mod 10. <paramref name="generate"/>
    /// gets the batch's classes and returns (B, 1, 32, 32) in [-1, 1] on any device (disposed after use); only features
    /// are kept. <paramref name="progress"/>(done, n) is called after each batch.
    /// </summary>
    public EvalResult EvaluateSamples(Func<int[], Tensor> generate, int n, int batchSize = 100, Action<int, int>? progress = null)
    {
        if (n <= k) throw new ArgumentOutOfRangeException(nameof(n), $"need more than k = {k} samples");
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), "batch size must be positive");
        var requested = BalancedClasses(n);
        var predictions = new int[n];
        var parts = new List<Tensor>();
        try
        {
            for (int start = 0; start < n; start += batchSize)
            {
                var classes = requested.AsSpan(start, Math.Min(batchSize, n - start)).ToArray();
                using var images = generate(classes);
                if (images.ndim != 4 || images.shape[0] != classes.Length)
                    throw new InvalidOperationException($"the generator returned shape ({string.Join(", ", images.shape)}) for {classes.Length} requested images");
                var (features, batchPredictions) = classifier.Embed(images, this.batchSize);
                parts.Add(features);
                batchPredictions.CopyTo(predictions, start);
                progress?.Invoke(start + classes.Length, n);
            }
            using var all = cat(parts, 0); // (n, 128)
            return Score(all, predictions, requested);
        }
        finally { foreach (var p in parts) p.Dispose(); }
    }

    /// <summary>One-shot scoring with a fresh evaluator: <paramref name="classifier"/> defaults to
    /// <see cref="FeatureClassifier.LoadDefault"/> on <paramref name="device"/>, <paramref name="reference"/> to the test split.</summary>
    public static EvalResult Evaluate(Tensor generated, int[] requestedClasses, LabeledImages? reference = null,
        FeatureClassifier? classifier = null, Device? device = null, int k = 3)
    {
        using var owned = classifier == null ? FeatureClassifier.LoadDefault(device) : null;
        using var evaluator = new Evaluator(classifier ?? owned!, reference, k: k);
        return evaluator.Evaluate(generated, requestedClasses);
    }

    /// <summary>Class i mod <see cref="FeatureClassifier.NumClasses"/> for i in [0, n).</summary>
    public static int[] BalancedClasses(int n) => Enumerable.Range(0, n).Select(i => i % FeatureClassifier.NumClasses).ToArray();

    EvalResult Score(Tensor features, int[] predictions, int[] requestedClasses)
    {
        int n = predictions.Length;
        if (requestedClasses.Length != n) throw new ArgumentException($"{requestedClasses.Length} requested classes for {n} images");
        foreach (var c in requestedClasses)
            if (c < 0 || c >= FeatureClassifier.NumClasses) throw new ArgumentException($"requested class {c} outside 0..{FeatureClassifier.NumClasses - 1}");
        if (n <= k || n < 2) throw new ArgumentException($"need more than k = {k} (and at least 2) generated images, got {n}");

        using var stats = FeatureStatistics.FromFeatures(features);
        double fid = FrechetDistance.Compute(stats, referenceStats);
        int prReference = Math.Min(n, ReferenceCount);
        using var realSubset = referenceFeatures.narrow(0, 0, prReference);
        var (precision, recall) = ManifoldPrecisionRecall.Compute(realSubset, features, k, classifier.Device);
        double accuracy = predictions.Zip(requestedClasses).Count(p => p.First == p.Second) / (double)n;
        return new EvalResult(fid, precision, recall, accuracy, n, ReferenceCount, prReference, k);
    }

    public void Dispose() { referenceFeatures.Dispose(); referenceStats.Dispose(); }
}
