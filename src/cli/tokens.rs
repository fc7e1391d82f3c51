//! `authcell tokens`: mint and revoke disposable tokens.

use super::*;

/// The id (jti) of a token, read from its payload without verifying it: for display only.
pub(crate) fn token_jti(token: &str) -> Option<String> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("jti")?.as_str().map(str::to_owned)
}

pub(crate) async fn tokens_mint(client: &ClientArgs, args: TokensMint) -> Result<(), Failure> {
    let statements = mint_statements(&args)?;
    let valid_for_seconds = u32::try_from(args.expires_in.as_secs())
        .map_err(|_| Failure::usage("--expires-in: too long"))?;
    let api = Api::connect(client).await?;
    let minted = api
        .token()
        .generate_disposable_token(api.req(token::GenerateDisposableTokenRequest {
            expires: Some(token::generate_disposable_token_request::Expires { valid_for_seconds }),
            // Empty: the server takes the caller's key from the `authorization` metadata.
            auth_token: String::new(),
            permissions: Some(pm::Permissions {
                kind: Some(pm::permissions::Kind::Explicit(pm::ExplicitPermissions {
                    permissions: statements,
                })),
            }),
            token_id: args.token_id.clone().unwrap_or_default(),
        }))
        .await
        .map_err(from_status)?
        .into_inner();
    let id = token_jti(&minted.api_key);
    if client.json {
        return json_out(&MintedTokenJson {
            token: minted.api_key,
            id,
            token_id: args.token_id,
            endpoint: minted.endpoint,
            valid_until_epoch_seconds: minted.valid_until,
        });
    }
    out(&format!("{}\n", minted.api_key));
    let mut about = format!(
        "Minted token {}",
        id.as_deref().map_or_else(|| "-".to_owned(), printable)
    );
    if let Some(token_id) = &args.token_id {
        about.push_str(&format!(" (token id {})", printable(token_id)));
    }
    about.push_str(&format!(
        ", valid until {}, for endpoint {}. It is printed on stdout this once.\n",
        format_secs(minted.valid_until),
        printable(&minted.endpoint)
    ));
    note(&about);
    Ok(())
}

pub(crate) async fn tokens_revoke(client: &ClientArgs, args: TokensRevoke) -> Result<(), Failure> {
    let (which, label) = match (&args.id, &args.token_id) {
        (Some(id), _) => (
            pb::revoke_token_request::Token::Id(id.clone()),
            format!("token {}", printable(id)),
        ),
        (None, Some(token_id)) => (
            pb::revoke_token_request::Token::TokenId(token_id.clone()),
            format!("token id {}", printable(token_id)),
        ),
        (None, None) => return Err(Failure::usage("set --id or --token-id")),
    };
    let api = Api::connect(client).await?;
    let revocation_id = api
        .admin()
        .revoke_token(api.req(pb::RevokeTokenRequest {
            token: Some(which),
            expires_at_epoch_seconds: 0,
        }))
        .await
        .map_err(from_status)?
        .into_inner()
        .revocation_id;
    if !client.json {
        out(&format!("Revoked {label}.\n"));
    }
    let confirmation = match args.confirm_timeout {
        Some(ms) => Some(
            api.confirm(&revocation_id, ms)
                .await
                .map_err(|f| f.after("the token is revoked; only confirming it failed"))?,
        ),
        None => None,
    };
    if client.json {
        return json_out(&RevokedTokenJson {
            id: args.id,
            token_id: args.token_id,
            revoked: true,
            revocation_id: Some(revocation_id).filter(|id| !id.is_empty()),
            confirmation,
        });
    }
    if let (Some(c), Some(ms)) = (&confirmation, args.confirm_timeout) {
        out(&confirmation_text(c, ms));
    }
    Ok(())
}
