#:project ../src/TerDiT/TerDiT.csproj
#:property PublishAot=false
// Reference values of the evaluation metrics for real and degraded Fashion-MNIST images (docs/EVAL.md).
// Usage (from the repository root): dotnet run -c Release models/fmnist-classifier.check.cs -- [n]
using System.Diagnostics;
using TerDiT.Data;
using TerDiT.Evaluation;
using static TorchSharp.torch;

int n = args.Length > 0 ? int.Parse(args[0]) : 10_000;
using var classifier = FeatureClassifier.LoadDefault();
var test = FashionMnist.Load(Split.Test);
var train = FashionMnist.Load(Split.Train);
Console.WriteLine($"classifier {FeatureClassifier.Architecture}: stored {classifier.Provenance}");
Console.WriteLine($"test accuracy recomputed: {classifier.Accuracy(test):P2}; train accuracy: {classifier.Accuracy(train):P2}");

var clock = Stopwatch.StartNew();
using var evaluator = new Evaluator(classifier, test);
using var real = EvalImages.ToTensor(train, 0, n); // (n, 1, 32, 32): train images the reference never saw
var classes = train.Labels[..n];
using var g = new Generator(1);
using var noise = randn(real.shape, generator: g);
void Report(string what, Tensor images)
{
    var r = evaluator.Evaluate(images, classes);
    Console.WriteLine($"| {what} | {r.Fid:F3} | {r.Precision:F3} | {r.Recall:F3} | {r.ClassAccuracy:F3} |");
}
Console.WriteLine($"N = {n} generated-set images vs the {evaluator.ReferenceCount} test images:");
Console.WriteLine("| images | FID | precision | recall | class accuracy |\n|---|---|---|---|---|");
Report("real (train split)", real);
foreach (var s in new[] { 0.1, 0.3 }) { using var x = (real + s * noise).clamp(-1, 1); Report($"real + N(0, {s}²) noise", x); }
using (var blurred = nn.functional.avg_pool2d(real, 3, stride: 1, padding: 1)) Report("real, 3×3 box blur", blurred);
using (var shuffled = real.index_select(0, randperm(n, generator: g))) Report("real, labels shuffled", shuffled);
Console.WriteLine($"({clock.Elapsed.TotalSeconds:F0} s)");
