using System.Globalization;
using TerDiT.Runtime.Diffusion;

namespace TerDiT.Cli.Commands;

/// <summary>
/// Progress of a long step as plain lines (<c>label: done/total unit</c>), one each time another tenth is done and
/// at the end, so it reads the same on a terminal, in a log file and in tests. No TorchSharp type here.
/// </summary>
sealed class ProgressLines(TextWriter output, string label, string unit) : IProgress<SamplingProgress>
{
    int lastTenth = -1;

    public void Report(SamplingProgress p) => Report(p.Done, p.Total);

    public void Report(int done, int total)
    {
        int tenth = total <= 0 ? 10 : (int)(10L * done / total);
        if (tenth == lastTenth && done != total) return;
        lastTenth = tenth;
        output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{label}: {done}/{total} {unit}"));
    }
}
