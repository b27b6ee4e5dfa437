namespace TerDiT.Tests;

/// <summary>Paths to the small data fixtures committed under tests/fixtures.</summary>
public static class Fixtures
{
    /// <summary>512 train + 256 test Fashion-MNIST images as gzipped IDX, same file names as the Debian package.</summary>
    public static string FashionMnistDirectory => Path.Combine(RepoRoot, "tests", "fixtures", "fashion-mnist");

    public static string RepoRoot
    {
        get
        {
            var dir = new DirectoryInfo(AppContext.BaseDirectory);
            while (dir != null && !File.Exists(Path.Combine(dir.FullName, "TerDiT.sln"))) dir = dir.Parent;
            return dir?.FullName ?? throw new InvalidOperationException("repository root (TerDiT.sln) not found above the test binaries");
        }
    }
}
