using System.CommandLine;
using TorchSharp;

namespace TerDiT.Cli.Commands;

/// <summary><c>--device cpu|cuda</c>; cuda initialises libtorch's CUDA backend first.</summary>
static class DeviceOption
{
    public static Option<string> Create() 
    {
        var option = new Option<string>("--device") { Description = "cpu or cuda", DefaultValueFactory = _ => "cpu" };
        option.AcceptOnlyFromAmong("cpu", "cuda");
        return option;
    }

    /// <summary>The TorchSharp device for the option's value; cuda fails with a clear message when unavailable.</summary>
    public static torch.Device Resolve(string name)
    {
        if (name != "cuda") return torch.CPU;
        torch.InitializeDeviceType(DeviceType.CUDA);
        if (!torch.cuda.is_available())
            throw new InvalidOperationException("--device cuda: no CUDA device available (is a CUDA build of libtorch installed?)");
        return torch.CUDA;
    }
}
