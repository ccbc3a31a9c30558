//! Runs files through a target and prints what the reader said: to look at a finding, or at
//! a regression input after a fix. `cargo run -p scalegnn-fuzz --example replay -- TARGET FILE...`

#[global_allocator]
static ALLOC: scalegnn_fuzz::alloc::CappedAlloc = scalegnn_fuzz::alloc::CappedAlloc;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(name) = args.next() else {
        eprintln!("usage: replay TARGET FILE...");
        std::process::exit(2);
    };
    let Some(target) = scalegnn_fuzz::TARGETS.iter().find(|t| t.name == name) else {
        let names: Vec<&str> = scalegnn_fuzz::TARGETS.iter().map(|t| t.name).collect();
        eprintln!("unknown target {name:?}; targets: {}", names.join(", "));
        std::process::exit(2);
    };
    for file in args {
        match std::fs::read(&file) {
            Ok(data) => match (target.run)(&data) {
                Ok(()) => println!("{file}: accepted"),
                Err(e) => println!("{file}: refused: {e}"),
            },
            Err(e) => println!("{file}: {e}"),
        }
    }
}
