#:project ../src/TerDiT/TerDiT.csproj
#:property PublishAot=false
// Trains the evaluation classifier on the full Fashion-MNIST and writes models/fmnist-classifier.safetensors.
// Usage (from the repository root): dotnet run -c Release models/fmnist-classifier.train.cs -- [epochs] [seed] [threads] [train-limit]
// One thread is faster than two on a machine shared with other jobs (no OpenMP spin-waiting on descheduled threads).
using System.Diagnostics;
using TerDiT.Data;
using TerDiT.Evaluation;

int epochs = args.Length > 0 ? int.Parse(args[0]) : 6;
int seed = args.Length > 1 ? int.Parse(args[1]) : 1;
var train = FashionMnist.Load(Split.Train);
if (args.Length > 2) TorchSharp.torch.set_num_threads(int.Parse(args[2]));
if (args.Length > 3) train = train.Take(int.Parse(args[3]));
var test = FashionMnist.Load(Split.Test);
Console.WriteLine($"training {FeatureClassifier.Architecture} on {train.Count} images, {epochs} epochs, seed {seed}, {TorchSharp.torch.get_num_threads()} threads");

var clock = Stopwatch.StartNew();
using var model = FeatureClassifier.Train(train, epochs, seed, progress: p =>
    Console.WriteLine($"epoch {p.Epoch}/{p.Epochs} step {p.Step}/{p.TotalSteps} loss {p.Loss:F4} ({clock.Elapsed.TotalSeconds:F0} s)"));
double seconds = clock.Elapsed.TotalSeconds;
double accuracy = model.Accuracy(test);
Console.WriteLine($"test accuracy {accuracy:P2} on {test.Count} images; training took {seconds:F0} s");

var path = Path.Combine("models", FeatureClassifier.DefaultFileName);
model.Save(path, new ClassifierProvenance(train.Count, epochs, seed, accuracy, test.Count, Math.Round(seconds)));
Console.WriteLine($"wrote {path} ({new FileInfo(path).Length} bytes)");
