using System.CommandLine;
using TerDiT.Runtime.Format;
using TerDiT.Runtime.Onnx;

namespace TerDiT.Cli.Commands;

/// <summary>
/// <c>terdit export-onnx --model M.tdit --out M.onnx [--int8]</c>: the packed model as an ONNX graph
/// (<see cref="OnnxExport"/>): fp32, or per-token int8 activations times int8 trits. Never loads libtorch.
/// </summary>
static class ExportOnnxCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "packed model (.tdit) to export", Required = true };
        var output = new Option<string>("--out") { Description = "ONNX file to write (weights past 1 GiB go to OUT.data beside it)", Required = true };
        var int8 = new Option<bool>("--int8") { Description = "ternary linears as per-token int8 activations × int8 trits (MatMulInteger), as the runtime's a8 mode; default fp32" };
        var command = new Command("export-onnx", "Write a packed model as an ONNX graph (opset 17) for ONNX Runtime and other ONNX engines.");
        foreach (var o in new Option[] { model, output, int8 }) command.Add(o);
        command.SetAction(p => CliApp.Guard(p, stdout =>
        {
            using var file = TditFile.Open(p.GetValue(model)!);
            var precision = p.GetValue(int8) ? OnnxPrecision.Int8 : OnnxPrecision.Float32;
            var result = OnnxExport.Export(file, p.GetValue(output)!, precision);
            stdout.WriteLine($"{result.ModelPath}: {result.ModelBytes} bytes, {file.Config.Name} ({(precision == OnnxPrecision.Int8 ? "int8" : "fp32")}, opset {OnnxExport.Opset})"
                + (result.DataPath is null ? "" : $"; weights in {result.DataPath}: {result.DataBytes} bytes"));
            return 0;
        }));
        return command;
    }
}
