fn main() -> std::process::ExitCode {
    migrator::main()
}
