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

/** In-app first, so an email that keeps failing does not hold back the in-app entry. */
export const pendingOfEvent = `
  select id, event_id, user_id, kind, channel, recipient, subject, body
    from notifications where event_id = $1 and status = 'pending'
   order by channel = 'email', id`;

/** The guard is the `where`: a row is marked sent, and its event written, once. */
export const markSent = `
  update notifications set status = 'sent', sent_at = $2 where id = $1 and status = 'pending' returning id`;

export const notificationsOfUser = `
  select id, event_id, kind, channel, recipient, subject, body, status, created_at, sent_at
    from notifications where user_id = $1
   order by created_at desc, id desc limit $2 offset $3`;
