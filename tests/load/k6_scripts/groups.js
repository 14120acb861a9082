import http from 'k6/http';
import { check, group, sleep } from 'k6';

export const options = { vus: 3, duration: '20s' };

export default function () {
  group('front page', function () {
    const res = http.get('http://shop.test/');
    check(res, { 'front ok': (r) => r.status === 200 });
    group('assets', () => {
      http.get('http://shop.test/style.css');
    });
  });
  sleep(1);
}
