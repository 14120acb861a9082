import http from 'k6/http';
import { sleep } from 'k6';

const BASE_URL = __ENV.BASE_URL || 'http://localhost:8008';
const LIMIT = __ENV.LIMIT || 100;
const PAUSE = Number(__ENV.PAUSE || '0.25');

export const options = {
  vus: __ENV.VUS || 5,
  duration: `${__ENV.SECONDS || 10}s`,
};

export default function () {
  http.get(`${BASE_URL}/records?limit=${LIMIT}`);
  http.get(BASE_URL + '/records/' + encodeURIComponent('a b'), { headers: { 'X-Env': __ENV.TAG || 'none' } });
  sleep(PAUSE);
}
