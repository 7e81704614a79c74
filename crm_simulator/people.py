"""Personal data of simulated customers: Chinese names with pinyin, cities, ids, contacts.

All functions are vectorised over customers and draw from the generator they are given.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# (surname, pinyin, relative frequency): the most common Chinese surnames.
SURNAMES: tuple[tuple[str, str, float], ...] = (
    ("王", "Wang", 7.1),
    ("李", "Li", 7.0),
    ("张", "Zhang", 6.8),
    ("刘", "Liu", 5.4),
    ("陈", "Chen", 4.5),
    ("杨", "Yang", 3.1),
    ("黄", "Huang", 2.4),
    ("赵", "Zhao", 2.3),
    ("吴", "Wu", 2.0),
    ("周", "Zhou", 1.9),
    ("徐", "Xu", 1.5),
    ("孙", "Sun", 1.4),
    ("马", "Ma", 1.3),
    ("朱", "Zhu", 1.2),
    ("胡", "Hu", 1.1),
    ("郭", "Guo", 1.1),
    ("何", "He", 1.0),
    ("高", "Gao", 1.0),
    ("林", "Lin", 1.0),
    ("罗", "Luo", 0.9),
    ("郑", "Zheng", 0.9),
    ("梁", "Liang", 0.8),
    ("谢", "Xie", 0.7),
    ("宋", "Song", 0.7),
    ("唐", "Tang", 0.7),
    ("许", "Xu", 0.6),
    ("韩", "Han", 0.6),
    ("冯", "Feng", 0.6),
    ("邓", "Deng", 0.6),
    ("曹", "Cao", 0.6),
    ("彭", "Peng", 0.5),
    ("曾", "Zeng", 0.5),
    ("肖", "Xiao", 0.5),
    ("田", "Tian", 0.5),
    ("董", "Dong", 0.5),
    ("袁", "Yuan", 0.4),
    ("潘", "Pan", 0.4),
    ("于", "Yu", 0.4),
    ("蒋", "Jiang", 0.4),
    ("蔡", "Cai", 0.4),
    ("余", "Yu", 0.4),
    ("杜", "Du", 0.4),
    ("叶", "Ye", 0.4),
    ("程", "Cheng", 0.4),
    ("苏", "Su", 0.3),
    ("魏", "Wei", 0.3),
    ("吕", "Lyu", 0.3),
    ("丁", "Ding", 0.3),
    ("任", "Ren", 0.3),
    ("沈", "Shen", 0.3),
)

# Given-name characters with pinyin, by gender (F, M as in contracts.GENDERS).
GIVEN_FEMALE: tuple[tuple[str, str], ...] = (
    ("芳", "fang"),
    ("娜", "na"),
    ("敏", "min"),
    ("静", "jing"),
    ("丽", "li"),
    ("艳", "yan"),
    ("娟", "juan"),
    ("霞", "xia"),
    ("秀", "xiu"),
    ("英", "ying"),
    ("玲", "ling"),
    ("婷", "ting"),
    ("雪", "xue"),
    ("慧", "hui"),
    ("莹", "ying"),
    ("琳", "lin"),
    ("晶", "jing"),
    ("颖", "ying"),
    ("佳", "jia"),
    ("欣", "xin"),
    ("怡", "yi"),
    ("萍", "ping"),
    ("红", "hong"),
    ("梅", "mei"),
    ("琴", "qin"),
    ("燕", "yan"),
    ("倩", "qian"),
    ("雯", "wen"),
    ("悦", "yue"),
    ("洁", "jie"),
    ("兰", "lan"),
    ("凤", "feng"),
)
GIVEN_MALE: tuple[tuple[str, str], ...] = (
    ("伟", "wei"),
    ("强", "qiang"),
    ("磊", "lei"),
    ("军", "jun"),
    ("勇", "yong"),
    ("杰", "jie"),
    ("涛", "tao"),
    ("明", "ming"),
    ("超", "chao"),
    ("刚", "gang"),
    ("平", "ping"),
    ("辉", "hui"),
    ("鹏", "peng"),
    ("华", "hua"),
    ("飞", "fei"),
    ("鑫", "xin"),
    ("波", "bo"),
    ("斌", "bin"),
    ("宇", "yu"),
    ("浩", "hao"),
    ("凯", "kai"),
    ("健", "jian"),
    ("俊", "jun"),
    ("帆", "fan"),
    ("旭", "xu"),
    ("龙", "long"),
    ("志", "zhi"),
    ("建", "jian"),
    ("国", "guo"),
    ("文", "wen"),
    ("博", "bo"),
    ("晨", "chen"),
)

# (city, administrative area code used in national ids, relative weight).
CITIES: tuple[tuple[str, str, float], ...] = (
    ("上海", "310115", 9.0),
    ("北京", "110105", 8.5),
    ("广州", "440106", 6.5),
    ("深圳", "440305", 6.5),
    ("杭州", "330106", 4.5),
    ("成都", "510107", 5.0),
    ("重庆", "500103", 5.0),
    ("武汉", "420106", 4.0),
    ("南京", "320102", 3.5),
    ("天津", "120101", 3.5),
    ("西安", "610113", 3.5),
    ("苏州", "320505", 3.2),
    ("长沙", "430104", 2.8),
    ("郑州", "410105", 3.0),
    ("青岛", "370202", 2.5),
    ("沈阳", "210102", 2.4),
    ("宁波", "330203", 2.2),
    ("东莞", "441900", 2.3),
    ("佛山", "440604", 2.2),
    ("合肥", "340104", 2.2),
    ("济南", "370102", 2.1),
    ("福州", "350102", 1.9),
    ("厦门", "350203", 1.5),
    ("昆明", "530102", 1.9),
    ("大连", "210202", 1.7),
    ("哈尔滨", "230102", 1.9),
    ("石家庄", "130102", 1.8),
    ("南昌", "360102", 1.6),
    ("长春", "220102", 1.6),
    ("贵阳", "520102", 1.4),
    ("无锡", "320213", 1.5),
    ("温州", "330302", 1.4),
)

EMAIL_DOMAINS: tuple[str, ...] = ("qq.com", "163.com", "126.com", "sina.com", "outlook.com", "foxmail.com")
EMAIL_DOMAIN_WEIGHTS: tuple[float, ...] = (0.38, 0.26, 0.12, 0.08, 0.09, 0.07)

_ID_WEIGHTS = np.array([7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2], dtype=np.int64)
_ID_CHECK = np.array(list("10X98765432"))


@dataclass(frozen=True)
class People:
    """Personal columns of the CRM export, one entry per customer."""

    name_zh: pa.Array
    name_latin: pa.Array
    city: pa.Array
    email: pa.Array
    phone: pa.Array
    national_id: pa.Array


def _weighted_choice(rng: np.random.Generator, weights: tuple[float, ...] | np.ndarray, n: int) -> np.ndarray:
    p = np.asarray(weights, dtype=np.float64)
    return np.searchsorted(np.cumsum(p / p.sum()), rng.random(n), side="right").clip(0, len(p) - 1)


def _pick(values: tuple[str, ...], index: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(values, dtype=object)[index], pa.string())


def national_id_check(body: np.ndarray) -> np.ndarray:
    """ISO 7064 MOD 11-2 check characters of national ids.

    Parameters
    ----------
    body
        Integer array of shape (n, 17): the first 17 digits of each id.
    """
    if body.ndim != 2 or body.shape[1] != 17:
        raise ValueError(f"national id body must have shape (n, 17), got {body.shape}")
    return _ID_CHECK[(body @ _ID_WEIGHTS) % 11]


def _digits(values: np.ndarray, width: int) -> np.ndarray:
    powers = 10 ** np.arange(width - 1, -1, -1, dtype=np.int64)
    return (values[:, None] // powers) % 10


def make_people(rng: np.random.Generator, gender_female: np.ndarray, birth_days: np.ndarray, epoch_day0: int) -> People:
    """Names, contact data and national ids for ``len(gender_female)`` customers.

    ``birth_days`` are day numbers relative to the window start (negative); ``epoch_day0``
    is the window start in days since 1970-01-01, used to spell the birth date in the id.
    """
    n = len(gender_female)
    surname = _weighted_choice(rng, tuple(w for _, _, w in SURNAMES), n)
    two_chars = rng.random(n) < 0.7
    first = rng.integers(0, len(GIVEN_FEMALE), n)
    second = rng.integers(0, len(GIVEN_FEMALE), n)
    female_zh = np.array([c for c, _ in GIVEN_FEMALE], dtype=object)
    male_zh = np.array([c for c, _ in GIVEN_MALE], dtype=object)
    female_py = np.array([p for _, p in GIVEN_FEMALE], dtype=object)
    male_py = np.array([p for _, p in GIVEN_MALE], dtype=object)
    zh = np.where(gender_female, female_zh[first], male_zh[first])
    py = np.where(gender_female, female_py[first], male_py[first])
    zh2 = np.where(two_chars, np.where(gender_female, female_zh[second], male_zh[second]), "")
    py2 = np.where(two_chars, np.where(gender_female, female_py[second], male_py[second]), "")

    surname_zh = _pick(tuple(s for s, _, _ in SURNAMES), surname)
    surname_py = _pick(tuple(p for _, p, _ in SURNAMES), surname)
    given_py = pc.binary_join_element_wise(pa.array(py, pa.string()), pa.array(py2, pa.string()), "")
    name_zh = pc.binary_join_element_wise(surname_zh, pa.array(zh, pa.string()), pa.array(zh2, pa.string()), "")
    name_latin = pc.binary_join_element_wise(surname_py, pc.utf8_capitalize(given_py), " ")

    has_number = rng.random(n) < 0.6
    number = rng.integers(1, 10_000, n)
    suffix = pa.array(np.where(has_number, number.astype(str), ""), pa.string())
    domain = _pick(EMAIL_DOMAINS, _weighted_choice(rng, EMAIL_DOMAIN_WEIGHTS, n))
    local = pc.binary_join_element_wise(pc.utf8_lower(surname_py), given_py, suffix, "")
    email = pc.binary_join_element_wise(local, domain, "@")

    second_digit = rng.integers(3, 10, n).astype(np.int64)
    phone_number = 10_000_000_000 + second_digit * 1_000_000_000 + rng.integers(0, 1_000_000_000, n)
    phone = pa.array(phone_number.astype(str), pa.string())

    city_index = _weighted_choice(rng, tuple(w for _, _, w in CITIES), n)
    city = _pick(tuple(c for c, _, _ in CITIES), city_index)
    # Most people were born where they live; the rest elsewhere.
    born_elsewhere = rng.random(n) < 0.3
    birth_city = np.where(born_elsewhere, _weighted_choice(rng, tuple(w for _, _, w in CITIES), n), city_index)
    area = np.array([int(code) for _, code, _ in CITIES], dtype=np.int64)[birth_city]
    birth = np.datetime64("1970-01-01", "D") + (birth_days + epoch_day0).astype("timedelta64[D]")
    month_start = birth.astype("datetime64[M]")
    yyyymmdd = (
        (birth.astype("datetime64[Y]").astype(np.int64) + 1970) * 10_000
        + (month_start.astype(np.int64) % 12 + 1) * 100
        + (birth - month_start.astype("datetime64[D]")).astype(np.int64)
        + 1
    )
    # The sequence number's last digit is odd for men and even for women.
    sequence = rng.integers(0, 50, n) * 20 + 2 * rng.integers(0, 5, n) + np.where(gender_female, 0, 1)
    body = area * 100_000_000_000 + yyyymmdd * 1_000 + sequence
    check = pa.array(national_id_check(_digits(body, 17)).astype(object), pa.string())
    national_id = pc.binary_join_element_wise(pa.array(body).cast(pa.string()), check, "")

    return People(
        name_zh=name_zh,
        name_latin=name_latin,
        city=city,
        email=email,
        phone=phone,
        national_id=national_id,
    )
