"""The words the demo shop is made of: names, places, categories, brands and products.

Plain tuples only (no Django, no numpy), so that the generator stays importable alone and the
lists read as data. Brands are invented: the demo must not pass itself off as a real brand's
sales.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Common Chinese surnames with their pinyin, most frequent first (the generator weights them
#: by rank, as real surname frequencies fall off steeply).
SURNAMES: tuple[tuple[str, str], ...] = (
    ("王", "wang"), ("李", "li"), ("张", "zhang"), ("刘", "liu"), ("陈", "chen"),
    ("杨", "yang"), ("黄", "huang"), ("赵", "zhao"), ("吴", "wu"), ("周", "zhou"),
    ("徐", "xu"), ("孙", "sun"), ("马", "ma"), ("朱", "zhu"), ("胡", "hu"),
    ("郭", "guo"), ("何", "he"), ("高", "gao"), ("林", "lin"), ("罗", "luo"),
    ("郑", "zheng"), ("梁", "liang"), ("谢", "xie"), ("宋", "song"), ("唐", "tang"),
    ("许", "xu"), ("韩", "han"), ("冯", "feng"), ("邓", "deng"), ("曹", "cao"),
    ("彭", "peng"), ("曾", "zeng"), ("肖", "xiao"), ("田", "tian"), ("董", "dong"),
    ("袁", "yuan"), ("潘", "pan"), ("于", "yu"), ("蒋", "jiang"), ("蔡", "cai"),
    ("余", "yu"), ("杜", "du"), ("叶", "ye"), ("程", "cheng"), ("苏", "su"),
    ("魏", "wei"), ("吕", "lv"), ("丁", "ding"), ("任", "ren"), ("沈", "shen"),
    ("姚", "yao"), ("卢", "lu"), ("姜", "jiang"), ("崔", "cui"), ("钟", "zhong"),
    ("谭", "tan"), ("陆", "lu"), ("汪", "wang"), ("范", "fan"), ("金", "jin"),
)  # fmt: skip

#: Characters of given names with their pinyin, by the gender they are most used for.
GIVEN_FEMALE: tuple[tuple[str, str], ...] = (
    ("芳", "fang"), ("娜", "na"), ("敏", "min"), ("静", "jing"), ("丽", "li"),
    ("婷", "ting"), ("雪", "xue"), ("琳", "lin"), ("慧", "hui"), ("颖", "ying"),
    ("佳", "jia"), ("欣", "xin"), ("怡", "yi"), ("梦", "meng"), ("雨", "yu"),
    ("晓", "xiao"), ("诗", "shi"), ("涵", "han"), ("悦", "yue"), ("萱", "xuan"),
    ("倩", "qian"), ("玲", "ling"), ("燕", "yan"), ("霞", "xia"), ("月", "yue"),
)  # fmt: skip
GIVEN_MALE: tuple[tuple[str, str], ...] = (
    ("伟", "wei"), ("强", "qiang"), ("磊", "lei"), ("军", "jun"), ("洋", "yang"),
    ("勇", "yong"), ("杰", "jie"), ("涛", "tao"), ("明", "ming"), ("超", "chao"),
    ("刚", "gang"), ("平", "ping"), ("辉", "hui"), ("鹏", "peng"), ("浩", "hao"),
    ("宇", "yu"), ("俊", "jun"), ("博", "bo"), ("晨", "chen"), ("轩", "xuan"),
    ("子", "zi"), ("文", "wen"), ("建", "jian"), ("志", "zhi"), ("天", "tian"),
)  # fmt: skip

ENGLISH_FIRST_FEMALE: tuple[str, ...] = (
    "Emma", "Olivia", "Sophia", "Grace", "Chloe", "Lily", "Emily", "Hannah", "Amy", "Lucy",
)  # fmt: skip
ENGLISH_FIRST_MALE: tuple[str, ...] = (
    "James", "David", "Michael", "Daniel", "Thomas", "Jack", "Ryan", "Kevin", "Eric", "Leo",
)  # fmt: skip
ENGLISH_LAST: tuple[str, ...] = (
    "Smith", "Brown", "Taylor", "Wilson", "Clark", "Lee", "Walker", "Hall", "Young", "King",
)  # fmt: skip

#: E-mail domains and their share of addresses.
EMAIL_DOMAINS: tuple[tuple[str, float], ...] = (
    ("qq.com", 0.34), ("163.com", 0.2), ("126.com", 0.08), ("gmail.com", 0.09),
    ("outlook.com", 0.07), ("sina.com", 0.06), ("foxmail.com", 0.06), ("hotmail.com", 0.05),
    ("icloud.com", 0.05),
)  # fmt: skip

#: Real mobile prefixes of the three carriers (the three first digits of 1[3-9]x numbers).
MOBILE_PREFIXES: tuple[str, ...] = (
    "130", "131", "132", "133", "134", "135", "136", "137", "138", "139", "150", "151",
    "152", "153", "155", "156", "157", "158", "159", "166", "176", "177", "178", "180",
    "181", "182", "183", "184", "185", "186", "187", "188", "189", "191", "198", "199",
)  # fmt: skip

#: (province, city, weight): where customers live, weighted roughly by online shoppers.
PLACES: tuple[tuple[str, str, float], ...] = (
    ("广东", "广州", 5.0), ("广东", "深圳", 5.5), ("广东", "东莞", 2.0), ("广东", "佛山", 1.8),
    ("浙江", "杭州", 4.5), ("浙江", "宁波", 2.0), ("浙江", "温州", 1.5), ("上海", "上海", 6.0),
    ("北京", "北京", 5.5), ("江苏", "南京", 3.0), ("江苏", "苏州", 3.2), ("江苏", "无锡", 1.5),
    ("四川", "成都", 3.5), ("湖北", "武汉", 2.8), ("福建", "福州", 1.5), ("福建", "厦门", 1.5),
    ("山东", "济南", 1.6), ("山东", "青岛", 1.8), ("河南", "郑州", 2.0), ("湖南", "长沙", 2.0),
    ("陕西", "西安", 2.0), ("重庆", "重庆", 2.5), ("天津", "天津", 2.0), ("辽宁", "沈阳", 1.3),
    ("辽宁", "大连", 1.1), ("安徽", "合肥", 1.6), ("河北", "石家庄", 1.2), ("云南", "昆明", 1.2),
    ("广西", "南宁", 1.0), ("江西", "南昌", 1.0), ("黑龙江", "哈尔滨", 1.0), ("吉林", "长春", 0.8),
    ("山西", "太原", 0.8), ("贵州", "贵阳", 0.8), ("海南", "海口", 0.5), ("新疆", "乌鲁木齐", 0.5),
    ("内蒙古", "呼和浩特", 0.4), ("甘肃", "兰州", 0.5),
)  # fmt: skip

#: Channels (the values of ``ChannelChoices``) and their share of sign-ups.
SIGNUP_CHANNELS: tuple[tuple[str, float], ...] = (
    ("app", 0.32), ("mini_program", 0.3), ("web", 0.14), ("marketplace", 0.18), ("store", 0.06),
)  # fmt: skip
#: Channels on which a customer's behaviour is visible to the shop (it runs these front ends).
ONLINE_CHANNELS: tuple[str, ...] = ("web", "app", "mini_program")

CUSTOMER_TAGS: tuple[str, ...] = ("学生", "宝妈", "企业采购", "数码控", "美妆达人", "老客户")

RETURN_REASONS: tuple[str, ...] = ("七天无理由退货", "尺码不合适", "商品质量问题", "与描述不符")
PARTIAL_REFUND_REASONS: tuple[str, ...] = ("价格保护补差", "商品轻微瑕疵", "少发配件", "运费补偿")


@dataclass(frozen=True)
class LeafCategory:
    """A leaf of the two-level category tree and what its products look like."""

    top: str
    name: str
    min_price: float
    max_price: float
    popularity: float
    #: Extra appeal to female / male customers (1.0 = none).
    female_affinity: float
    male_affinity: float
    items: tuple[str, ...]
    #: Attribute name and its values, e.g. ("颜色", ("黑色", "白色")).
    attribute: tuple[str, tuple[str, ...]]

    @property
    def path(self) -> str:
        """The category path as the ingest expects it (``服装 > 女装``)."""
        return f"{self.top} > {self.name}"


_COLOURS = ("颜色", ("黑色", "白色", "米色", "藏青", "灰色", "粉色"))
_SIZES = ("尺码", ("S", "M", "L", "XL"))
_SHOE_SIZES = ("尺码", ("36", "37", "38", "39", "40", "41", "42", "43"))
_VOLUMES = ("规格", ("30ml", "50ml", "100ml", "200ml"))
_WEIGHTS = ("规格", ("250g", "500g", "1kg", "礼盒装"))
_STORAGE = ("存储", ("128GB", "256GB", "512GB"))
_PLAIN = ("版本", ("标准版", "升级版", "套装"))

CATEGORIES: tuple[LeafCategory, ...] = (
    LeafCategory(
        "服装", "女装", 59, 899, 9, 2.2, 0.2,
        ("连衣裙", "针织开衫", "阔腿裤", "风衣", "半身裙"), _SIZES,
    ),
    LeafCategory(
        "服装", "男装", 69, 999, 7, 0.3, 2.0,
        ("衬衫", "夹克", "休闲裤", "卫衣", "羽绒服"), _SIZES,
    ),
    LeafCategory(
        "服装", "童装", 39, 399, 4, 1.3, 0.8,
        ("儿童T恤", "童装套装", "儿童外套"), _SIZES,
    ),
    LeafCategory(
        "服装", "内衣", 29, 299, 4, 1.5, 0.7,
        ("文胸", "睡衣套装", "保暖内衣"), _SIZES,
    ),
    LeafCategory(
        "鞋包", "女鞋", 99, 1299, 5, 2.0, 0.2,
        ("小白鞋", "短靴", "乐福鞋", "凉鞋"), _SHOE_SIZES,
    ),
    LeafCategory(
        "鞋包", "男鞋", 129, 1499, 4, 0.3, 2.0,
        ("跑步鞋", "皮鞋", "板鞋"), _SHOE_SIZES,
    ),
    LeafCategory(
        "鞋包", "箱包", 79, 2999, 4, 1.4, 0.8,
        ("双肩包", "行李箱", "托特包", "钱包"), _COLOURS,
    ),
    LeafCategory(
        "美妆", "护肤", 59, 1599, 8, 2.2, 0.5,
        ("精华液", "面霜", "防晒霜", "洁面乳", "面膜"), _VOLUMES,
    ),
    LeafCategory(
        "美妆", "彩妆", 39, 599, 6, 2.4, 0.2,
        ("口红", "粉底液", "眼影盘", "眉笔"), _COLOURS,
    ),
    LeafCategory(
        "美妆", "香水", 199, 1899, 2, 1.6, 0.8,
        ("淡香水", "香氛礼盒"), _VOLUMES,
    ),
    LeafCategory(
        "个护", "洗发护发", 19, 199, 5, 1.2, 0.9,
        ("洗发水", "护发素", "发膜"), _VOLUMES,
    ),
    LeafCategory(
        "个护", "口腔护理", 9, 399, 3, 1.0, 1.0,
        ("电动牙刷", "牙膏", "冲牙器"), _PLAIN,
    ),
    LeafCategory(
        "个护", "身体护理", 15, 199, 3, 1.3, 0.8,
        ("沐浴露", "身体乳", "护手霜"), _VOLUMES,
    ),
    LeafCategory(
        "数码", "手机", 999, 8999, 3, 0.8, 1.4,
        ("5G手机", "折叠屏手机"), _STORAGE,
    ),
    LeafCategory(
        "数码", "手机配件", 9, 299, 6, 0.9, 1.3,
        ("快充充电器", "数据线", "手机壳", "充电宝"), _COLOURS,
    ),
    LeafCategory(
        "数码", "耳机音响", 49, 2999, 4, 0.8, 1.5,
        ("蓝牙耳机", "降噪耳机", "智能音箱"), _COLOURS,
    ),
    LeafCategory(
        "数码", "电脑办公", 49, 9999, 3, 0.6, 1.7,
        ("笔记本电脑", "机械键盘", "无线鼠标", "显示器"), _PLAIN,
    ),
    LeafCategory(
        "家电", "厨房电器", 99, 2999, 3, 1.2, 0.9,
        ("空气炸锅", "电饭煲", "破壁机", "咖啡机"), _PLAIN,
    ),
    LeafCategory(
        "家电", "生活电器", 59, 3999, 3, 1.0, 1.1,
        ("扫地机器人", "吹风机", "加湿器", "电风扇"), _PLAIN,
    ),
    LeafCategory(
        "家居", "家纺", 49, 1299, 4, 1.4, 0.7,
        ("四件套", "蚕丝被", "乳胶枕"), _COLOURS,
    ),
    LeafCategory(
        "家居", "厨具", 19, 699, 3, 1.2, 0.8,
        ("不粘锅", "刀具套装", "保温杯"), _COLOURS,
    ),
    LeafCategory(
        "家居", "收纳", 9, 199, 3, 1.3, 0.7,
        ("收纳箱", "衣架", "置物架"), _COLOURS,
    ),
    LeafCategory(
        "食品", "零食", 9, 129, 8, 1.1, 1.0,
        ("坚果礼盒", "牛肉干", "饼干", "果干"), _WEIGHTS,
    ),
    LeafCategory(
        "食品", "茶饮", 19, 599, 4, 0.9, 1.2,
        ("龙井茶", "普洱茶", "咖啡豆", "花茶"), _WEIGHTS,
    ),
    LeafCategory(
        "食品", "生鲜", 29, 399, 3, 1.1, 0.9,
        ("车厘子", "大闸蟹", "牛排", "三文鱼"), _WEIGHTS,
    ),
    LeafCategory(
        "母婴", "奶粉", 159, 499, 3, 1.8, 0.5,
        ("婴儿奶粉", "儿童成长奶粉"), ("段位", ("1段", "2段", "3段")),
    ),
    LeafCategory(
        "母婴", "纸尿裤", 59, 299, 3, 1.8, 0.5,
        ("纸尿裤", "拉拉裤"), _SIZES,
    ),
    LeafCategory(
        "运动户外", "运动服饰", 59, 899, 4, 0.9, 1.3,
        ("速干T恤", "瑜伽裤", "运动外套"), _SIZES,
    ),
    LeafCategory(
        "运动户外", "健身器材", 29, 2999, 2, 0.8, 1.4,
        ("瑜伽垫", "哑铃", "跑步机"), _PLAIN,
    ),
    LeafCategory(
        "运动户外", "户外装备", 39, 1999, 2, 0.7, 1.5,
        ("帐篷", "登山鞋", "冲锋衣"), _COLOURS,
    ),
)  # fmt: skip

#: Invented brands per top-level category.
BRANDS: dict[str, tuple[str, ...]] = {
    "服装": ("云裳", "木槿衣橱", "拾光", "北纬", "素语"),
    "鞋包": ("步履", "行者", "橙意", "漫游家"),
    "美妆": ("花间集", "青黛", "珂颜", "若水", "朱砂"),
    "个护": ("净颜", "清漾", "植萃", "舒悦"),
    "数码": ("极客派", "星驰", "灵犀", "原点科技", "声浪"),
    "家电": ("暖居", "小熊厨房", "云米家", "匠心"),
    "家居": ("栖木", "棉田", "简屋", "拾物"),
    "食品": ("山野小铺", "茗香", "鲜到家", "果然好"),
    "母婴": ("贝亲宝", "小禾", "安心宝贝"),
    "运动户外": ("疾风", "山岚", "跃动", "野径"),
}

#: Words before the item noun in a product name.
PRODUCT_ADJECTIVES: tuple[str, ...] = (
    "经典", "轻薄", "新款", "加厚", "简约", "高端",
    "便携", "升级款", "网红", "国潮", "基础款", "限定",
)  # fmt: skip
