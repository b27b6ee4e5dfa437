namespace TerDiT.Cli.Commands;

/// <summary>
/// The pretrained packed model shipped in the repository (models/, copied beside the executable by the
/// build): what <c>terdit sample</c> uses when given neither --checkpoint nor --model.
/// </summary>
static class ShippedModel
{
    public const string FileName = "terdit-s-fmnist.tdit";

    /// <summary>The first models/<see cref="FileName"/> beside the executable or in a parent folder of it or of the current directory.</summary>
    public static string Find()
    {
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
            for (var dir = new DirectoryInfo(start); dir != null; dir = dir.Parent)
            {
                var path = Path.Combine(dir.FullName, "models", FileName);
                if (File.Exists(path)) return path;
            }
        throw new FileNotFoundException($"the shipped model models/{FileName} was not found beside the executable or above it; pass --model MODEL.tdit or --checkpoint CKPT");
    }
}
