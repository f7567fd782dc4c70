using BenchmarkDotNet.Running;
using Halo.Benchmarks;

// Micro-benchmarks of each kernel and of tokenizer loading: `dotnet run -c Release --project tests/Halo.Benchmarks -- --filter '*'`;
// the daemon's cold start: `... -- cold-start DAEMON MODEL.gguf` (ColdStart.cs).
if (args.Length > 0 && args[0] == "cold-start")
{
    return ColdStart.Run(args[1..]);
}

BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
return 0;
