using TerDiT.Training;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;
using Parameter = TorchSharp.Modules.Parameter;

namespace TerDiT.Tests;

public class FlatParametersTests
{
    static nn.Module<Tensor, Tensor> MakeModel(long seed)
    {
        torch.manual_seed(seed);
        return nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 3));
    }

    static (string, Parameter)[] Named(nn.Module m) => m.named_parameters().Select(p => (p.name, p.parameter)).ToArray();

    static float MaxDiff(Tensor a, Tensor b) => a.sub(b).abs().max().item<float>();

    [Fact]
    public void BackwardWritesIntoTheFlatGradientStepAfterStep()
    {
        using var flatModel = MakeModel(3);
        using var plainModel = MakeModel(3);
        var before = Named(flatModel).Select(p => p.Item2.detach().clone()).ToArray();
        using var flat = new FlatParameters(Named(flatModel));
        Assert.Equal(Named(flatModel).Sum(p => p.Item2.NumberOfElements), flat.Data.NumberOfElements);
        Assert.Equal(0, Named(flatModel).Zip(before).Max(p => MaxDiff(p.First.Item2, p.Second))); // values kept
        using var g = new Generator(11);
        for (int step = 0; step < 3; step++)
        {
            var x = randn([8, 6], generator: g); var y = randn([8, 3], generator: g);
            flat.ZeroGrad();
            nn.functional.mse_loss(flatModel.forward(x), y).backward();
            foreach (var p in plainModel.parameters()) p.grad = null;
            nn.functional.mse_loss(plainModel.forward(x), y).backward();
            var expected = torch.cat(plainModel.parameters().Select(p => p.grad!.flatten()).ToArray());
            Assert.Equal(0, MaxDiff(flat.Grad, expected));                      // the same gradient, in the shared buffer
            using (torch.no_grad()) { flat.Data.add_(flat.Grad, -0.1); foreach (var p in plainModel.parameters()) p.add_(p.grad!, -0.1); }
        }
        // The model's parameters are views of Data: the updates made through the buffer are the model's.
        Assert.Equal(0, MaxDiff(torch.cat(flatModel.parameters().Select(p => p.flatten()).ToArray()), torch.cat(plainModel.parameters().Select(p => p.flatten()).ToArray())));
        Assert.Equal(0, MaxDiff(flat.Views(flat.Data).First().View, flatModel.parameters().First()));
    }

    [Fact]
    public void ClipGradNormMatchesTorch()
    {
        using var flatModel = MakeModel(5);
        using var plainModel = MakeModel(5);
        using var flat = new FlatParameters(Named(flatModel));
        var x = torch.randn(8, 6).mul(10); var y = torch.randn(8, 3);
        nn.functional.mse_loss(flatModel.forward(x), y).backward();
        nn.functional.mse_loss(plainModel.forward(x), y).backward();
        double mine = flat.ClipGradNorm(0.5), theirs = nn.utils.clip_grad_norm_(plainModel.parameters(), 0.5);
        Assert.True(theirs > 0.5, $"the test needs a norm above the limit, got {theirs}");
        Assert.Equal(theirs, mine, theirs * 1e-5);
        var expected = torch.cat(plainModel.parameters().Select(p => p.grad!.flatten()).ToArray());
        Assert.True(MaxDiff(flat.Grad, expected) < 1e-6, $"clipped gradients differ by {MaxDiff(flat.Grad, expected)}");
        Assert.Equal(0.5, flat.ClipGradNorm(double.PositiveInfinity), 1e-5);   // measures only
    }

    [Fact]
    public void RefusesMixedDtypesAndFrozenParameters()
    {
        var mixed = new[] { ("a", new Parameter(torch.zeros(3))), ("b", new Parameter(torch.zeros(3, ScalarType.Float64))) };
        Assert.Contains("b is Float64", Assert.Throws<ArgumentException>(() => new FlatParameters(mixed)).Message);
        var frozen = new Parameter(torch.zeros(3), requires_grad: false);
        Assert.Contains("c does not require", Assert.Throws<ArgumentException>(() => new FlatParameters([("c", frozen)])).Message);
    }
}
