export const insertUser = `insert into users (id, email, password_hash, role, created_at) values ($1, $2, $3, $4, $5)
  on conflict (email) do nothing returning id`;
export const userByEmail = `select id, email, password_hash, role from users where email = $1`;
export const insertShop = `insert into shops (id, owner_id, name, created_at) values ($1, $2, $3, $4)`;
export const shopByOwner = `select id, owner_id, name from shops where owner_id = $1`;
export const ownerOfShop = `select owner_id from shops where id = $1`;
export const phoneById = `select phone from users where id = $1`;
export const phonesByIds = `select id, phone from users where id = any($1::uuid[]) and phone is not null`;
export const setPhone = `update users set phone = $2 where id = $1 and role = 'buyer' returning id`;
export const emailsByIds = `select id, email from users where id = any($1::uuid[])`;
