//! Prints the Gatehouse CRDs as one multi-document YAML stream, or with `--write [DIR]`
//! writes one file per CRD (default: the crate's `yaml/` directory).

use gatehouse_crds::generate::{GenerateError, all_crds, committed_dir, render, write_all};
use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.as_slice() {
        [] => print_all(),
        [flag] if flag == "--write" => write_to(committed_dir()),
        [flag, dir] if flag == "--write" => write_to(PathBuf::from(dir)),
        _ => {
            eprintln!("usage: gen-crds [--write [DIR]]");
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("gen-crds: {e}");
            ExitCode::FAILURE
        }
    }
}

fn print_all() -> Result<(), GenerateError> {
    let docs = all_crds()
        .iter()
        .map(render)
        .collect::<Result<Vec<_>, _>>()?;
    print!("{}", docs.join("---\n"));
    Ok(())
}

fn write_to(dir: PathBuf) -> Result<(), GenerateError> {
    for path in write_all(&dir)? {
        println!("wrote {}", path.display());
    }
    Ok(())
}
