//! The `invitetomedia` binary: parses the command and hands over to the library.

#[actix_web::main]
async fn main() {
    let code = invitetomedia::cli::run(std::env::args().skip(1).collect()).await;
    std::process::exit(code);
}
