import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { scalar, startHarness, type Harness } from '../../test/support/harness.ts';

/** A JWT built by hand: header and claims as given, signed HS256 with `secret` (or unsigned when `secret` is null). */
function craftToken(header: Record<string, unknown>, claims: Record<string, unknown>, secret: string | null): string {
  const encode = (part: Record<string, unknown>) => Buffer.from(JSON.stringify(part)).toString('base64url');
  const signingInput = `${encode(header)}.${encode(claims)}`;
  const signature = secret === null ? '' : createHmac('sha256', secret).update(signingInput).digest('base64url');
  return `${signingInput}.${signature}`;
}

const nowS = () => Math.floor(Date.now() / 1000);

describe('accounts over HTTP', () => {
  let h: Harness;
  let secret: string;
  before(async () => {
    h = await startHarness();
    secret = h.system.config.JWT_SECRET;
  });
  after(() => h.close());

  const register = (email: string, password: string) => h.http.request('POST', '/v1/auth/register', { body: { email, password } });
  const login = (email: string, password: string) => h.http.request('POST', '/v1/auth/login', { body: { email, password } });
  const createMerchant = (token: string | undefined, body: Record<string, unknown>) =>
    h.http.request('POST', '/v1/admin/merchants', { ...(token === undefined ? {} : { token }), body });
  const usersWithEmail = (email: string) => scalar(h.system, 'select count(*) from users where email = $1', [email]);

  describe('POST /v1/auth/register', () => {
    it('when a new email registers, then 201 with a buyer account, the email normalized and no password in the answer', async () => {
      const res = await register('New.Buyer@Example.COM', 'a-long-password');
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.email, 'new.buyer@example.com');
      assert.equal(res.body.role, 'buyer');
      assert.match(res.body.id, /^[0-9a-f-]{36}$/);
      assert.deepEqual(Object.keys(res.body).sort(), ['email', 'id', 'role']);
      assert.equal(await usersWithEmail('new.buyer@example.com'), 1);
    });

    it('when the email is already registered (in any letter case), then 409 email_taken and no second account', async () => {
      assert.equal((await register('twice@example.com', 'password-one')).status, 201);
      const res = await register('TWICE@example.com', 'password-two');
      assert.equal(res.status, 409);
      assert.equal(res.body.error.code, 'email_taken');
      assert.equal(typeof res.body.error.message, 'string');
      assert.equal(await usersWithEmail('twice@example.com'), 1);
    });

    it('when the email is not an email or the password is shorter than 8, then 422 validation_failed and nothing is stored', async () => {
      const before = await scalar(h.system, 'select count(*) from users');
      for (const [email, password] of [['not-an-email', 'long-enough-pw'], ['', 'long-enough-pw'], ['short@example.com', 'short'], ['short@example.com', '']]) {
        const res = await register(email!, password!);
        assert.equal(res.status, 422, `${email} / ${password}: ${JSON.stringify(res.body)}`);
        assert.equal(res.body.error.code, 'validation_failed');
      }
      assert.equal(await scalar(h.system, 'select count(*) from users'), before);
    });
  });

  describe('POST /v1/auth/login', () => {
    const email = 'login-buyer@example.com';
    const password = 'correct-horse-battery';
    before(async () => {
      const res = await register(email, password);
      assert.equal(res.status, 201, JSON.stringify(res.body));
    });

    it('when the password is right, then 200 with a token that works on a buyer route', async () => {
      const res = await login('  Login-Buyer@Example.com ', password);
      assert.equal(res.status, 200, JSON.stringify(res.body));
      assert.equal(res.body.user.email, email);
      assert.equal(res.body.user.role, 'buyer');
      assert.equal(typeof res.body.token, 'string');
      const orders = await h.http.request('GET', '/v1/orders', { token: res.body.token });
      assert.equal(orders.status, 200, JSON.stringify(orders.body));
      assert.deepEqual(orders.body.orders, []);
      const merchantOnly = await h.http.request('POST', '/v1/products', { token: res.body.token, body: { name: 'x', price: 1, currency: 'USD' } });
      assert.equal(merchantOnly.status, 403);
    });

    it('when the password is wrong, then 401 invalid_credentials and no token', async () => {
      const res = await login(email, 'wrong-password');
      assert.equal(res.status, 401);
      assert.equal(res.body.error.code, 'invalid_credentials');
      assert.equal(res.body.token, undefined);
    });

    it('when the email is unknown, then 401 invalid_credentials, the same answer as a wrong password', async () => {
      const unknown = await login('nobody@example.com', password);
      const wrong = await login(email, 'wrong-password');
      assert.equal(unknown.status, 401);
      assert.deepEqual(unknown.body, wrong.body);
    });
  });

  describe('POST /v1/admin/merchants', () => {
    it('when an admin creates a merchant, then 201 with the user and its shop, and the merchant can log in and sell', async () => {
      const res = await createMerchant(h.adminToken(), { email: 'Shop.Owner@Example.com', password: 'merchant-pass', shopName: 'Owner & Co 🛒' });
      assert.equal(res.status, 201, JSON.stringify(res.body));
      assert.equal(res.body.user.email, 'shop.owner@example.com');
      assert.equal(res.body.user.role, 'merchant');
      assert.equal(res.body.shop.ownerId, res.body.user.id);
      assert.equal(res.body.shop.name, 'Owner & Co 🛒');
      const session = await login('shop.owner@example.com', 'merchant-pass');
      assert.equal(session.status, 200);
      const product = await h.http.request('POST', '/v1/products', { token: session.body.token, body: { name: 'Widget', price: 100, currency: 'EUR' } });
      assert.equal(product.status, 201, JSON.stringify(product.body));
      assert.equal(product.body.shopId, res.body.shop.id);
    });

    it('when the merchant email is taken, then 409 email_taken and no shop is created', async () => {
      const shops = await scalar(h.system, 'select count(*) from shops');
      const res = await createMerchant(h.adminToken(), { email: 'shop.owner@example.com', password: 'merchant-pass', shopName: 'Second shop' });
      assert.equal(res.status, 409);
      assert.equal(res.body.error.code, 'email_taken');
      assert.equal(await scalar(h.system, 'select count(*) from shops'), shops);
    });

    it('when a buyer or nobody asks, then 403 forbidden or 401 unauthorized, and nothing is created', async () => {
      const body = { email: 'not-created@example.com', password: 'merchant-pass', shopName: 'Nope' };
      const asBuyer = await createMerchant(h.buyerToken().token, body);
      assert.equal(asBuyer.status, 403);
      assert.equal(asBuyer.body.error.code, 'forbidden');
      const anonymous = await createMerchant(undefined, body);
      assert.equal(anonymous.status, 401);
      assert.equal(anonymous.body.error.code, 'unauthorized');
      assert.equal(await usersWithEmail('not-created@example.com'), 0);
    });

    describe('with a hand-made token', () => {
      const body = { email: 'forged@example.com', password: 'merchant-pass', shopName: 'Forged' };
      const adminClaims = () => ({ sub: randomUUID(), role: 'admin', iat: nowS(), exp: nowS() + 600 });
      const hs256 = { alg: 'HS256', typ: 'JWT' };

      it('when the token is well formed and signed with our secret, then it is accepted (the forger below is sound)', async () => {
        const res = await createMerchant(craftToken(hs256, adminClaims(), secret), { ...body, email: 'crafted-ok@example.com' });
        assert.equal(res.status, 201, JSON.stringify(res.body));
      });

      const cases: Array<[string, () => string]> = [
        ['is expired', () => craftToken(hs256, { ...adminClaims(), iat: nowS() - 7200, exp: nowS() - 3600 }, secret)],
        ['is signed with another secret', () => craftToken(hs256, adminClaims(), 'some-other-secret-of-16+chars')],
        ['says alg none and has no signature', () => craftToken({ alg: 'none', typ: 'JWT' }, adminClaims(), null)],
        ['says alg none but keeps our signature', () => {
          const signed = craftToken(hs256, adminClaims(), secret);
          const [, claims, signature] = signed.split('.');
          return `${Buffer.from(JSON.stringify({ alg: 'none', typ: 'JWT' })).toString('base64url')}.${claims}.${signature}`;
        }],
        ['has its claims tampered after signing (buyer raised to admin)', () => {
          const claims = { sub: randomUUID(), role: 'buyer', iat: nowS(), exp: nowS() + 600 };
          const [header, , signature] = craftToken(hs256, claims, secret).split('.');
          return `${header}.${Buffer.from(JSON.stringify({ ...claims, role: 'admin' })).toString('base64url')}.${signature}`;
        }],
        ['is not valid yet (nbf in the future)', () => craftToken(hs256, { ...adminClaims(), nbf: nowS() + 3600 }, secret)],
        ['carries an unknown role', () => craftToken(hs256, { ...adminClaims(), role: 'superuser' }, secret)],
        ['has no subject', () => craftToken(hs256, { role: 'admin', iat: nowS(), exp: nowS() + 600 }, secret)],
        ['is not a JWT at all', () => 'not.a.jwt'],
      ];
      for (const [name, make] of cases) {
        it(`when the token ${name}, then 401 unauthorized and nothing is created`, async () => {
          const users = await scalar(h.system, 'select count(*) from users');
          const res = await createMerchant(make(), body);
          assert.equal(res.status, 401, JSON.stringify(res.body));
          assert.equal(res.body.error.code, 'unauthorized');
          assert.equal(await scalar(h.system, 'select count(*) from users'), users);
        });
      }

      it('when a valid token is sent with another scheme than Bearer, then 401', async () => {
        const res = await h.http.request('POST', '/v1/admin/merchants', { body, headers: { authorization: `Basic ${h.adminToken()}` } });
        assert.equal(res.status, 401);
        assert.equal(res.body.error.code, 'unauthorized');
      });
    });
  });
});
