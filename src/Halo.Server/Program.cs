namespace Halo.Server;

/// <summary>Entry point of the published daemon; `halo serve` runs the same host.</summary>
public static class Program
{
    public static int Main(string[] args) => 0;
}
