//! `refreshd keys generate`: a fresh signing key, printed or written to a file with mode 0600.
//! Needs no settings; the key material itself comes from `tokens::keys`.

use std::path::Path;

use crate::config::Algorithm;

/// Makes a key of `alg` and prints it, or writes the private half to `out` (created, never
/// overwritten) and the public half to `out.pub`.
pub fn generate(alg: &str, out: Option<&Path>) -> Result<(), String> {
    let alg = Algorithm::parse(alg).ok_or_else(|| {
        format!("--alg {alg:?} is not one of HS256, HS384, HS512, RS256, RS384, RS512, ES256, ES384, EdDSA")
    })?;
    let (private, public) = crate::tokens::keys::generate(alg).map_err(|e| e.to_string())?;
    match out {
        None => {
            println!("{}", private.trim_end());
            if let Some(public) = public {
                println!("{}", public.trim_end());
            }
        }
        Some(path) => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| format!("{}: {e}", path.display()))?;
            writeln!(file, "{}", private.trim_end()).map_err(|e| e.to_string())?;
            eprintln!("wrote {}", path.display());
            if let Some(public) = public {
                let mut pub_path = path.as_os_str().to_owned();
                pub_path.push(".pub");
                std::fs::write(&pub_path, public).map_err(|e| e.to_string())?;
                eprintln!("wrote {}", Path::new(&pub_path).display());
            }
        }
    }
    Ok(())
}
