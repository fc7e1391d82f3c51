//! A minimal blocking RESP2 client: what the harness needs to ask a server, nothing more.

use super::*;

/// One RESP2 reply.
pub(super) enum Reply {
    Simple(String),
    Error(String),
    Integer(i64),
    Bulk(Vec<u8>),
    Nil,
    Array(Vec<Reply>),
}

impl Reply {
    /// See [`RedisServer::command`].
    pub(super) fn render(&self) -> String {
        match self {
            Reply::Simple(s) => s.clone(),
            Reply::Error(e) => format!("(error) {e}"),
            Reply::Integer(i) => i.to_string(),
            Reply::Bulk(b) => String::from_utf8_lossy(b).into_owned(),
            Reply::Nil => "(nil)".into(),
            Reply::Array(items) => items
                .iter()
                .map(Reply::render)
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }
}

/// Connects to 127.0.0.1:`port`; `timeout` bounds the connect and every read and write.
pub(super) fn connect(port: u16, timeout: Duration) -> io::Result<TcpStream> {
    let stream =
        TcpStream::connect_timeout(&SocketAddr::from((Ipv4Addr::LOCALHOST, port)), timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// Sends `args` as an array of bulk strings on a new connection and reads one reply.
pub(super) fn request(port: u16, args: &[&str], timeout: Duration) -> io::Result<Reply> {
    let mut message = format!("*{}\r\n", args.len()).into_bytes();
    for arg in args {
        message.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
        message.extend_from_slice(arg.as_bytes());
        message.extend_from_slice(b"\r\n");
    }
    let mut stream = connect(port, timeout)?;
    stream.write_all(&message)?;
    read_reply(&mut BufReader::new(stream))
}

pub(super) fn read_reply(reader: &mut BufReader<TcpStream>) -> io::Result<Reply> {
    let mut line = String::new();
    if reader.read_line(&mut line)? == 0 {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "connection closed before a reply",
        ));
    }
    let line = line
        .strip_suffix("\r\n")
        .ok_or_else(|| invalid(format!("reply line without CRLF: {line:?}")))?;
    let (kind, rest) = line
        .split_at_checked(1)
        .ok_or_else(|| invalid("empty reply line".into()))?;
    let number = || -> io::Result<i64> {
        rest.parse()
            .map_err(|_| invalid(format!("bad length or integer: {line:?}")))
    };
    Ok(match kind {
        "+" => Reply::Simple(rest.into()),
        "-" => Reply::Error(rest.into()),
        ":" => Reply::Integer(number()?),
        "$" => match usize::try_from(number()?) {
            Err(_) => Reply::Nil,
            Ok(len) => {
                let mut data = vec![0; len + 2];
                reader.read_exact(&mut data)?;
                if !data.ends_with(b"\r\n") {
                    return Err(invalid("bulk string without CRLF".into()));
                }
                data.truncate(len);
                Reply::Bulk(data)
            }
        },
        "*" => match usize::try_from(number()?) {
            Err(_) => Reply::Nil,
            Ok(len) => Reply::Array(
                (0..len)
                    .map(|_| read_reply(reader))
                    .collect::<io::Result<_>>()?,
            ),
        },
        _ => return Err(invalid(format!("unknown reply type: {line:?}"))),
    })
}

pub(super) fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}
