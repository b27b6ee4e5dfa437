using TerDiT.Data;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;
using F = TorchSharp.torch.nn.functional;

namespace TerDiT.Evaluation;

/// <summary>Progress of <see cref="FeatureClassifier.Train"/>: <paramref name="Loss"/> is the mean training loss
/// of the batches since the previous report.</summary>
public sealed record ClassifierTrainProgress(int Epoch, int Epochs, int Step, int TotalSteps, double Loss);

/// <summary>
/// A small CNN on 32×32 grey Fashion-MNIST in [-1, 1] (see <see cref="EvalImages"/>) whose penultimate layer is the
/// feature space of the evaluation metrics (FID, precision/recall) and whose logits give the class accuracy of samples.
/// Architecture <see cref="Architecture"/>: three blocks Conv3×3(pad 1, no bias) → BatchNorm → ReLU with 32, 64, 128
/// channels, 2×2 max-pooling after the first two; global average pooling gives the <see cref="FeatureDim"/>-dim
/// feature vector (non-negative); a Linear layer maps it to <see cref="NumClasses"/> logits.
/// </summary>
public sealed partial class FeatureClassifier : nn.Module<Tensor, Tensor>
{
    /// <summary>Name stored in the weights file; a file with another name is refused.</summary>
    public const string Architecture = "fmnist-cnn-c32-c64-c128-gap";
    public const int InputSize = 32, FeatureDim = 128, NumClasses = 10;

    readonly Conv2d conv1, conv2, conv3;
    readonly ChannelBatchNorm bn1, bn2, bn3;
    readonly Linear head;

    /// <summary>A freshly initialised network (TorchSharp's default init, drawn from the global generator).</summary>
    public FeatureClassifier() : base(nameof(FeatureClassifier))
    {
        conv1 = nn.Conv2d(1, 32, 3, padding: 1, bias: false);
        bn1 = new ChannelBatchNorm(32);
        conv2 = nn.Conv2d(32, 64, 3, padding: 1, bias: false);
        bn2 = new ChannelBatchNorm(64);
        conv3 = nn.Conv2d(64, FeatureDim, 3, padding: 1, bias: false);
        bn3 = new ChannelBatchNorm(FeatureDim);
        head = nn.Linear(FeatureDim, NumClasses);
        RegisterComponents();
    }

    /// <summary>How the loaded weights were made (null for a network built in this process and not yet saved).</summary>
    public ClassifierProvenance? Provenance { get; private set; }

    /// <summary>The device holding the weights.</summary>
    public Device Device => head.weight!.device;

    /// <summary>Penultimate features: x (N, 1, 32, 32) → (N, 128).</summary>
    public Tensor Features(Tensor x)
    {
        using var scope = NewDisposeScope();
        x = F.max_pool2d(F.relu(bn1.forward(conv1.forward(x))), 2); // (N, 32, 16, 16)
        x = F.max_pool2d(F.relu(bn2.forward(conv2.forward(x))), 2); // (N, 64, 8, 8)
        x = F.relu(bn3.forward(conv3.forward(x)));                  // (N, 128, 8, 8)
        return scope.MoveToOuter(x.mean([2, 3]));                   // (N, 128)
    }

    /// <summary>Logits: x (N, 1, 32, 32) → (N, 10).</summary>
    public override Tensor forward(Tensor x)
    {
        using var features = Features(x);
        return head.forward(features);
    }

    /// <summary>
    /// Features (float64, CPU, (N, 128)) and argmax classes of <paramref name="images"/> (N, 1, 32, 32) on any device,
    /// in eval mode (the network is left in it), <paramref name="batchSize"/> images at a time on <see cref="Device"/>.
    /// Inputs are clamped to [-1, 1].
    /// </summary>
    public (Tensor Features, int[] Predictions) Embed(Tensor images, int batchSize = 500)
    {
        CheckImages(images);
        if (batchSize <= 0) throw new ArgumentOutOfRangeException(nameof(batchSize), "batch size must be positive");
        eval();
        using var noGrad = no_grad();
        long n = images.shape[0];
        var features = new List<Tensor>();
        var predictions = new int[n];
        try
        {
            for (long start = 0; start < n; start += batchSize)
            {
                using var scope = NewDisposeScope();
                var x = images.narrow(0, start, Math.Min(batchSize, n - start)).to(Device).clamp(Scalars.MinusOne, Scalars.One); // (B, 1, 32, 32)
                var f = Features(x);                                                                     // (B, 128)
                var p = head.forward(f).argmax(1).to(int32).cpu().data<int>().ToArray();
                p.CopyTo(predictions, start);
                features.Add(scope.MoveToOuter(f.to(float64).cpu()));
            }
            if (features.Count == 0) return (zeros(0, FeatureDim, float64), predictions);
            return (cat(features, 0), predictions); // (N, 128)
        }
        finally { foreach (var f in features) f.Dispose(); }
    }

    /// <summary>Fraction of <paramref name="images"/> whose argmax class equals its label.</summary>
    public double Accuracy(LabeledImages images, int batchSize = 500)
    {
        if (images.Count == 0) throw new ArgumentException("no images to score");
        using var x = EvalImages.ToTensor(images);
        var (features, predictions) = Embed(x, batchSize);
        features.Dispose();
        return predictions.Zip(images.Labels).Count(p => p.First == p.Second) / (double)images.Count;
    }

    /// <summary>
    /// Trains a fresh network on <paramref name="train"/>: AdamW (lr 2e-3, weight decay 5e-4, cosine decay to 0 over all
    /// steps), batch 128, cross-entropy, no augmentation. On the CPU, deterministic for a given <paramref name="seed"/> and
    /// thread count (CUDA convolutions may pick non-deterministic algorithms): the initialisation comes from a CPU generator seeded with <paramref name="seed"/> (never the
    /// global one), the batch order from <see cref="Random"/>(seed). <paramref name="progress"/> is called every 50 steps and at the end of each epoch.
    /// </summary>
    public static FeatureClassifier Train(LabeledImages train, int epochs, int seed, Device? device = null,
        Action<ClassifierTrainProgress>? progress = null)
    {
        const int batchSize = 128, reportEvery = 50;
        const double peakLr = 2e-3, weightDecay = 5e-4;
        if (epochs <= 0) throw new ArgumentOutOfRangeException(nameof(epochs), "epochs must be positive");
        if (train.NumClasses != NumClasses) throw new ArgumentException($"expected {NumClasses} classes, the data has {train.NumClasses}");
        if (train.Count < 2) throw new ArgumentException("need at least 2 training images");
        device ??= CPU;

        var model = new FeatureClassifier();
        using (var generator = new Generator((ulong)seed)) model.Initialise(generator);
        model.to(device);
        using var xCpu = EvalImages.ToTensor(train);                                     // (N, 1, 32, 32)
        using var yCpu = tensor(train.Labels.Select(l => (long)l).ToArray());            // (N)
        using var x = xCpu.to(device);
        using var y = yCpu.to(device);
        using var optimizer = optim.AdamW(model.parameters(), peakLr, weight_decay: weightDecay);
        var rng = new Random(seed);
        int n = train.Count, stepsPerEpoch = (n + batchSize - 1) / batchSize, totalSteps = epochs * stepsPerEpoch, step = 0;
        var order = Enumerable.Range(0, n).ToArray();
        double lossSum = 0; int lossCount = 0;
        model.train();
        for (int epoch = 1; epoch <= epochs; epoch++)
        {
            rng.Shuffle(order);
            for (int b = 0; b < stepsPerEpoch; b++)
            {
                using var scope = NewDisposeScope();
                // The last batch may be short; a batch of one would break BatchNorm's batch statistics, so it is skipped.
                int start = b * batchSize, count = Math.Min(batchSize, n - start);
                if (count < 2) continue;
                var idx = tensor(order.AsSpan(start, count).ToArray().Select(i => (long)i).ToArray()).to(device);
                double lr = peakLr * 0.5 * (1 + Math.Cos(Math.PI * step / totalSteps));
                foreach (var g in optimizer.ParamGroups) g.LearningRate = lr;
                optimizer.zero_grad();
                var loss = F.cross_entropy(model.forward(x.index_select(0, idx)), y.index_select(0, idx));
                loss.backward();
                optimizer.step();
                step++;
                lossSum += loss.item<float>(); lossCount++;
                if (step % reportEvery == 0 || b == stepsPerEpoch - 1)
                {
                    progress?.Invoke(new ClassifierTrainProgress(epoch, epochs, step, totalSteps, lossSum / lossCount));
                    lossSum = 0; lossCount = 0;
                }
            }
        }
        model.eval();
        return model;
    }

    /// <summary>Draws every weight as PyTorch's default init does (conv/linear weights and the linear bias uniform in
    /// ±1/√fan_in; BatchNorm weight 1, bias 0, running statistics reset) from <paramref name="generator"/>.</summary>
    void Initialise(Generator generator)
    {
        using var noGrad = no_grad();
        foreach (var w in new[] { conv1.weight!, conv2.weight!, conv3.weight!, head.weight! })
        {
            double bound = 1 / Math.Sqrt(w.numel() / w.shape[0]);
            w.uniform_(-bound, bound, generator);
        }
        head.bias!.uniform_(-1 / Math.Sqrt(FeatureDim), 1 / Math.Sqrt(FeatureDim), generator);
        foreach (var bn in new[] { bn1, bn2, bn3 }) bn.Reset();
    }

    static void CheckImages(Tensor images)
    {
        if (images.ndim != 4 || images.shape[1] != 1 || images.shape[2] != InputSize || images.shape[3] != InputSize)
            throw new ArgumentException($"expected images of shape (N, 1, {InputSize}, {InputSize}), got ({string.Join(", ", images.shape)})");
        if (!images.is_floating_point()) throw new ArgumentException($"expected floating-point images in [-1, 1], got {images.dtype}");
    }
}
