using BenchmarkDotNet.Running;

// Micro-benchmarks of each kernel and of tokenizer loading: `dotnet run -c Release --project tests/Halo.Benchmarks -- --filter '*'`.
BenchmarkSwitcher.FromAssembly(typeof(Program).Assembly).Run(args);
