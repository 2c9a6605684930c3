/** One row per (event, channel): a redelivered event finds its rows and adds none. */
export const insertNotification = `
  insert into notifications (id, event_id, user_id, kind, channel, recipient, subject, body, status, created_at)
  values ($1, $2, $3, $4, $5, $6, $7, $8, 'pending', $9)
  on conflict (event_id, channel) do nothing`;

/**
 * An in-app entry is delivered by being written: its row is born sent (the caller writes its event
 * in the same transaction). Returns the id only if this call made the row.
 */
export const insertSentNotification = `
  insert into notifications (id, event_id, user_id, kind, channel, recipient, subject, body, status, created_at, sent_at)
  values ($1, $2, $3, $4, $5, $6, $7, $8, 'sent', $9, $9)
  on conflict (event_id, channel) do nothing returning id`;

/**
 * The in-app entries of a batch of events, each born sent (see insertSentNotification), in one
 * statement. Returns the ids this call made: an event whose entry existed gets none.
 */
export const insertSentNotifications = `
  insert into notifications (id, event_id, user_id, kind, channel, recipient, subject, body, status, created_at, sent_at)
  select id, event_id, user_id, kind, 'in_app', null, subject, body, 'sent', $6, $6
    from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $7::text[]) as n(id, event_id, user_id, kind, subject, body)
  on conflict (event_id, channel) do nothing returning id`;

/** The email rows of a batch of events, pending until sent. */
export const insertEmailNotifications = `
  insert into notifications (id, event_id, user_id, kind, channel, recipient, subject, body, status, created_at)
  select id, event_id, user_id, kind, 'email', recipient, subject, body, 'pending', $7
    from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $8::text[]) as n(id, event_id, user_id, kind, recipient, subject, body)
  on conflict (event_id, channel) do nothing`;

/** The SMS rows of a batch of events (short texts, to opted-in phone numbers), pending until sent. */
export const insertSmsNotifications = `
  insert into notifications (id, event_id, user_id, kind, channel, recipient, subject, body, status, created_at)
  select id, event_id, user_id, kind, 'sms', recipient, subject, body, 'pending', $7
    from unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::text[], $5::text[], $6::text[], $8::text[]) as n(id, event_id, user_id, kind, recipient, subject, body)
  on conflict (event_id, channel) do nothing`;

/** In-app first, so an email that keeps failing does not hold back the in-app entry. */
export const pendingOfEvent = `
  select id, event_id, user_id, kind, channel, recipient, subject, body
    from notifications where event_id = $1 and status = 'pending'
   order by channel = 'email', id`;

/** The guard is the `where`: a row is marked sent, and its event written, once. */
export const markSent = `
  update notifications set status = 'sent', sent_at = $2 where id = any($1::uuid[]) and status = 'pending' returning id`;

export const notificationsOfUser = `
  select id, event_id, kind, channel, recipient, subject, body, status, created_at, sent_at
    from notifications where user_id = $1
   order by created_at desc, id desc limit $2 offset $3`;
