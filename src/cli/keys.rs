//! `authcell keys`: create, list, describe, revoke.

use super::*;

pub(crate) async fn keys_create(client: &ClientArgs, args: KeysCreate) -> Result<(), Failure> {
    use ga::generate_global_api_key_request::{Expires, Expiry, Never};
    let expiry = match (args.expires_at, args.expires_in) {
        (Some(at_ms), _) => Expiry::Expires(Expires {
            expiration_epoch_seconds: at_ms / 1000,
        }),
        (None, Some(after)) => Expiry::Expires(Expires {
            expiration_epoch_seconds: (now_ms() / 1000).saturating_add(after.as_secs()),
        }),
        (None, None) => Expiry::Never(Never {}),
    };
    let api = Api::connect(client).await?;
    let role_id = api.resolve_role(&args.role).await;
    // The role as the operator named it, and its id when that differs.
    let role_label = if role_id == args.role {
        printable(&role_id)
    } else {
        format!("{} ({})", printable(&args.role), printable(&role_id))
    };
    // One request id for this command: when the store answers UNAVAILABLE (Redis failing
    // over, replicas not acknowledging) the call is retried under the same id, so it creates at
    // most one key, and the key it reports is the one that exists.
    let request_id = uuid::Uuid::new_v4().to_string();
    let message = ga::GenerateGlobalApiKeyRequest {
        role_id,
        description: args.description,
        expiry: Some(expiry),
    };
    let mut attempt = 0;
    let created = loop {
        let mut request = api.req(message.clone());
        if let Ok(id) = request_id.parse() {
            request
                .metadata_mut()
                .insert(authcell_idempotency_key(), id);
        }
        match api.global_admin().generate_global_api_key(request).await {
            Err(status)
                if status.code() == tonic::Code::Unavailable && attempt < CREATE_RETRIES =>
            {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(500 * attempt)).await;
            }
            other => break other.map_err(from_status)?.into_inner(),
        }
    };
    let info = created.key_info.unwrap_or_default();
    if client.json {
        return json_out(&CreatedKeyJson {
            api_key: created.api_key,
            endpoint: api.endpoint.clone(),
            key_id: info.key_id,
            account_id: info.account_id,
            role_id: info.role_id,
            description: info.description,
            issued_at_epoch_seconds: info.issued_at_epoch_seconds,
            expires_at_epoch_seconds: info.expires_at_epoch_seconds,
        });
    }
    out(&format!("{}\n", created.api_key));
    note(&format!(
        "Created key {} (role {role_label}, {}). The key is printed on stdout this once: store it now.\n",
        info.key_id,
        match info.expires_at_epoch_seconds {
            Some(at) => format!("expires {}", format_secs(at)),
            None => "never expires".to_owned(),
        }
    ));
    Ok(())
}

pub(crate) async fn keys_list(client: &ClientArgs, args: KeysList) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    let limit = args.limit.map(|n| n as usize);
    let (keys, truncated) = collect_pages(limit, |page_size, next_token| {
        let api = &api;
        async move {
            let page = api
                .admin()
                .list_api_keys(api.req(pb::ListApiKeysRequest {
                    limit: page_size,
                    next_token,
                    include_inactive: args.all,
                    expiring_within_seconds: args.expiring_within.map_or(0, |d| d.as_secs()),
                }))
                .await
                .map_err(from_status)?
                .into_inner();
            Ok((page.keys, page.next_token))
        }
    })
    .await?;
    if client.json {
        return json_out(&KeyListJson {
            keys: keys.iter().map(key_json).collect(),
            truncated,
        });
    }
    // Custom roles by name, when the caller may list them; their ids otherwise.
    let names: Vec<(String, String)> = match api.list_roles().await {
        Ok(roles) => roles
            .into_iter()
            .filter(|r| r.kind == pb::RoleKind::Custom as i32)
            .map(|r| (r.role_id, r.name))
            .collect(),
        Err(_) => Vec::new(),
    };
    let role_label = |k: &pb::ApiKeyInfo| {
        if k.role_id.is_empty() {
            "(inline)".to_owned()
        } else {
            names
                .iter()
                .find(|(id, _)| *id == k.role_id)
                .map_or_else(|| cell(&k.role_id), |(_, name)| cell(name))
        }
    };
    let rows: Vec<Vec<String>> = keys
        .iter()
        .map(|k| {
            vec![
                cell(&k.key_id),
                role_label(k),
                key_status(k.status).to_owned(),
                cell(&k.description),
                format_secs(k.issued_at_epoch_seconds),
                k.expires_at_epoch_seconds
                    .map_or_else(|| "never".to_owned(), format_secs),
                cell(&k.created_by),
            ]
        })
        .collect();
    out(&render_table(
        &[
            "KEY ID",
            "ROLE",
            "STATUS",
            "DESCRIPTION",
            "ISSUED",
            "EXPIRES",
            "CREATED BY",
        ],
        &rows,
    ));
    if truncated {
        note("More keys exist: raise --limit to see them.\n");
    }
    Ok(())
}

pub(crate) fn key_block(k: &pb::ApiKeyInfo) -> String {
    let mut pairs = vec![
        ("key id", cell(&k.key_id)),
        ("account", cell(&k.account_id)),
        (
            "role",
            if k.role_id.is_empty() {
                "- (inline permissions)".to_owned()
            } else {
                cell(&k.role_id)
            },
        ),
        ("kind", key_kind(k.kind).to_owned()),
        ("status", key_status(k.status).to_owned()),
        ("description", cell(&k.description)),
        ("issued", format_secs(k.issued_at_epoch_seconds)),
        (
            "expires",
            k.expires_at_epoch_seconds
                .map_or_else(|| "never".to_owned(), format_secs),
        ),
    ];
    if let Some(at) = k.revoked_at_epoch_seconds {
        pairs.push(("revoked", format_secs(at)));
    }
    pairs.push(("created by", cell(&k.created_by)));
    if !k.token_id.is_empty() {
        pairs.push(("token id", cell(&k.token_id)));
    }
    if !k.rotated_from.is_empty() {
        pairs.push(("rotated from", cell(&k.rotated_from)));
    }
    if !k.rotated_to.is_empty() {
        pairs.push(("rotated to", cell(&k.rotated_to)));
    }
    if let (Some(at), None) = (k.revokes_at_epoch_seconds, k.revoked_at_epoch_seconds) {
        pairs.push((
            "revoked at",
            format!("{} (end of rotation overlap)", format_secs(at)),
        ));
    }
    render_block(&pairs)
}

pub(crate) async fn keys_describe(client: &ClientArgs, args: KeysDescribe) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    let key = api
        .admin()
        .describe_api_key(api.req(pb::DescribeApiKeyRequest {
            key_id: args.key_id,
        }))
        .await
        .map_err(from_status)?
        .into_inner()
        .key
        .unwrap_or_default();
    if client.json {
        return json_out(&key_json(&key));
    }
    out(&key_block(&key));
    Ok(())
}

pub(crate) fn confirmation_text(c: &Confirmation, timeout_ms: u32) -> String {
    if c.confirmed {
        format!(
            "Confirmed by every live cell: {}.\n",
            if c.confirmed_cells.is_empty() {
                "-".to_owned()
            } else {
                c.confirmed_cells.join(", ")
            }
        )
    } else {
        format!(
            "Not confirmed within {timeout_ms} ms: pending cells {}; confirmed cells {}.\n",
            if c.pending_cells.is_empty() {
                "-".to_owned()
            } else {
                c.pending_cells.join(", ")
            },
            if c.confirmed_cells.is_empty() {
                "-".to_owned()
            } else {
                c.confirmed_cells.join(", ")
            }
        )
    }
}

pub(crate) async fn keys_revoke(client: &ClientArgs, args: KeysRevoke) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    let response = api
        .global_admin()
        .revoke_global_api_key(api.req(ga::RevokeGlobalApiKeyRequest {
            key_id: args.key_id.clone(),
        }))
        .await
        .map_err(from_status)?;
    let revocation_id = response
        .metadata()
        .get(REVOCATION_ID_METADATA)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    if !client.json {
        out(&format!("Revoked key {}.\n", printable(&args.key_id)));
    }
    let confirmation = match args.confirm_timeout {
        Some(ms) => Some(
            api.confirm(&revocation_id, ms)
                .await
                .map_err(|f| f.after("the key is revoked; only confirming it failed"))?,
        ),
        None => None,
    };
    if client.json {
        return json_out(&RevokedKeyJson {
            key_id: args.key_id,
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

pub(crate) async fn keys_rotate(client: &ClientArgs, args: KeysRotate) -> Result<(), Failure> {
    let api = Api::connect(client).await?;
    // As `keys create`: one request id for this command, so a retry after UNAVAILABLE (the
    // rotation may have happened) gets the same new key instead of "already rotating".
    let request_id = uuid::Uuid::new_v4().to_string();
    let message = pb::RotateApiKeyRequest {
        key_id: args.key_id,
        overlap_seconds: args.overlap.as_secs(),
        lifetime_seconds: args.expires_in.map_or(0, |d| d.as_secs().max(1)),
    };
    let mut attempt = 0;
    let rotated = loop {
        let mut request = api.req(message.clone());
        if let Ok(id) = request_id.parse() {
            request
                .metadata_mut()
                .insert(authcell_idempotency_key(), id);
        }
        match api.admin().rotate_api_key(request).await {
            Err(status)
                if status.code() == tonic::Code::Unavailable && attempt < CREATE_RETRIES =>
            {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(500 * attempt)).await;
            }
            other => break other.map_err(from_status)?.into_inner(),
        }
    };
    let (new, old) = (
        rotated.key.unwrap_or_default(),
        rotated.rotated.unwrap_or_default(),
    );
    if client.json {
        return json_out(&RotatedKeyJson {
            api_key: rotated.api_key,
            refresh_token: Some(rotated.refresh_token).filter(|t| !t.is_empty()),
            endpoint: rotated.endpoint,
            key: key_json(&new),
            rotated: key_json(&old),
        });
    }
    out(&format!("{}\n", rotated.api_key));
    let printed = if rotated.refresh_token.is_empty() {
        "The new key is printed on stdout"
    } else {
        out(&format!("{}\n", rotated.refresh_token));
        "The new key and then its refresh token are printed on stdout"
    };
    note(&format!(
        "Rotated key {} to {}: the old key {}. {printed} this once: store them now.\n",
        printable(&old.key_id),
        printable(&new.key_id),
        match old.revokes_at_epoch_seconds {
            Some(at) if old.revoked_at_epoch_seconds.is_none() => {
                format!(
                    "keeps working until {}, then is revoked in every cell",
                    format_secs(at)
                )
            }
            _ => "is revoked now".to_owned(),
        }
    ));
    Ok(())
}

/// Retries of `keys create` after UNAVAILABLE (under the same idempotency-key).
pub(crate) const CREATE_RETRIES: u64 = 4;
